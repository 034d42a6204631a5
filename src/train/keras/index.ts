/**
 * Reading published Keras models (Keras 3 `.keras` archives and Keras 2 / tf.keras HDF5 files) into a
 * normalised graph + float32 weights, for hep-ml train (import / fine-tuning / comparison). See
 * docs/formats/keras.md.
 */
export { kerasGraphFromConfig, readKerasModel } from './read.js';
export type { KerasCallArg, KerasLayer, KerasModel, KerasShape, KerasWeight } from './read.js';
export { openHdf5, isHdf5, Hdf5Group, Hdf5Dataset, Hdf5Object } from './hdf5.js';
export { openZip, isZip, crc32 } from './zip.js';
export type { ZipArchive, ZipEntry } from './zip.js';
