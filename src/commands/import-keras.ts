import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { HepMlCommand } from '../cli/base.js';
import { UsageError } from '../errors.js';
import { loadEngine, parseEngine } from '../train/engine.js';
import { importKeras } from '../train/import-keras.js';
import { saveModelDir } from '../train/model-io.js';

export default class ImportKeras extends HepMlCommand {
  static override summary = 'Convert a Keras model (.keras or .h5) into a hep-ml model directory.';
  static override description = `Reads a Keras 3 .keras archive or a Keras 2 / tf.keras .h5 file — such as the published CERN models (myGRUmodel.keras, InclusiveClassifier.h5) — rebuilds its graph with hep-ml's layers (Masking(0) + GRU becomes the fused GRU layer) and copies its weights unchanged. Writes OUT as a model directory for hep-ml evaluate and serve: model.json + weights.bin (tfjs layers format) and hep-ml-model.json (inputs and their dataset columns, classes, the source file's sha256). Supported layers: InputLayer, Masking(0) + GRU (reset_after=True, tanh, sigmoid), Dropout, Dense, Concatenate; anything else is refused with the layer named. See docs/commands/import-keras.md.`;
  static override examples = [
    '<%= config.bin %> import-keras ../shared/models/sparkdltrigger/InclusiveClassifier.h5 -o published-inclusive/',
    '<%= config.bin %> import-keras myGRUmodel.keras -o gru-model/ --classes qcd,ttbar,wjets --json',
  ];
  static override args = {
    model: Args.string({ description: 'the Keras model file (.keras or .h5)', required: true }),
  };
  static override flags = {
    out: Flags.string({ char: 'o', description: 'the model directory to write (replaced if it is a hep-ml model directory)', required: true }),
    classes: Flags.string({ description: 'class names of the outputs, comma-separated (default qcd,ttbar,wjets for 3 outputs)' }),
    column: Flags.string({ description: 'INPUT=COLUMN: the dataset column that feeds a model input (default gru_input=GRU_input, hlf_input=HLF_input)', multiple: true }),
    engine: Flags.string({ description: 'tensor engine: auto, node, wasm, cpu', default: 'auto' }),
    json: Flags.boolean({ description: 'print the model description as JSON on stdout' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ImportKeras);
    const columns: Record<string, string> = {};
    for (const c of flags.column ?? []) {
      const m = /^([^=]+)=(.+)$/.exec(c);
      if (!m) throw new UsageError(`--column expects INPUT=COLUMN, got '${c}'`);
      columns[m[1]!.trim()] = m[2]!.trim();
    }
    const classes = flags.classes?.split(',').map((s) => s.trim()).filter(Boolean);
    const eng = await loadEngine(parseEngine(flags.engine));
    const { model, meta, keras } = await importKeras(args.model, { classes, columns });
    const out = resolve(flags.out);
    await saveModelDir(model, meta, out);
    this.note(
      `hep-ml import-keras: ${meta.importedFrom!.file} (${keras.format}${keras.kerasVersion ? `, Keras ${keras.kerasVersion}` : ''}) → ${out}: ` +
        `${meta.model} model, ${meta.params.toLocaleString('en-US')} parameters, inputs ${meta.inputs.map((i) => `${i.name}→${i.column}[${i.shape.join('×')}]`).join(', ')}, classes ${meta.output.classes.join(', ')} (${eng.name})`,
    );
    if (flags.json) process.stdout.write(JSON.stringify({ out, ...meta }) + '\n');
  }
}
