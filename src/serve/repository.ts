/**
 * The model repository: a directory whose subdirectories are model directories (`hep-ml train` or
 * `import-keras` output; the subdirectory's name is the model's name), or a single model directory (served
 * under its base name). Models are loaded at start and can be loaded, unloaded and uploaded at run time.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { makeTempDir } from '../columnar/tempdir.js';
import { META_FILE } from '../train/model-io.js';
import { unpackArchive } from './archive.js';
import { ServedModel, type BatchSettings } from './model.js';

/** A model name: letters, digits, '.', '_', '-'; starting with a letter or digit; at most 128 characters. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class RepositoryError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type ModelState = 'READY' | 'UNAVAILABLE' | 'LOADING';

interface Entry {
  name: string;
  dir: string;
  state: ModelState;
  reason?: string;
  model?: ServedModel;
  loading?: Promise<ServedModel>;
}

export function checkName(name: string): void {
  if (!NAME_RE.test(name) || name.includes('..')) {
    throw new RepositoryError(400, `invalid model name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' (at most 128, no '..')`);
  }
}

export class ModelRepository {
  private readonly entries = new Map<string, Entry>();
  /** The directory new models are loaded from and uploaded to. */
  readonly root: string;
  /** True when the repository is one model directory (no uploads). */
  readonly single: boolean;

  constructor(
    dir: string,
    private readonly settings: BatchSettings,
    private readonly o: { allowOverwrite: boolean; maxUnpackedBytes: number },
  ) {
    const abs = resolve(dir);
    this.single = existsSync(join(abs, META_FILE));
    this.root = this.single ? dirname(abs) : abs;
    if (this.single) this.entries.set(basename(abs), { name: basename(abs), dir: abs, state: 'UNAVAILABLE', reason: 'not loaded' });
  }

  /** Finds the models on disk and loads them all; returns the ones that failed (name → reason). */
  async loadAll(log: (l: string) => void): Promise<Map<string, string>> {
    if (!this.single) {
      for (const d of await readdir(this.root, { withFileTypes: true })) {
        if (!d.isDirectory() || d.name.startsWith('.')) continue;
        if (!NAME_RE.test(d.name) || !existsSync(join(this.root, d.name, META_FILE))) continue;
        this.entries.set(d.name, { name: d.name, dir: join(this.root, d.name), state: 'UNAVAILABLE', reason: 'not loaded' });
      }
    }
    const failed = new Map<string, string>();
    for (const name of this.entries.keys()) {
      try {
        const m = await this.load(name);
        log(`model ${name}: ${m.loaded.meta.model}, inputs ${m.inputs.map((i) => `${i.name}[${i.shape.join('×')}]`).join(' + ')}, classes ${m.classes.join(', ')}`);
      } catch (e) {
        failed.set(name, (e as Error).message);
        log(`model ${name}: not loaded: ${(e as Error).message}`);
      }
    }
    return failed;
  }

  /** Every known model with its state (the OIP repository index). */
  index(): { name: string; version: string; state: ModelState; reason: string }[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name)).map((e) => ({ name: e.name, version: '1', state: e.state, reason: e.reason ?? '' }));
  }

  /** A ready model, or undefined. */
  get(name: string): ServedModel | undefined {
    return this.entries.get(name)?.model;
  }

  ready(): ServedModel[] {
    return [...this.entries.values()].filter((e) => e.model).map((e) => e.model!);
  }

  /** Loads (or reloads) a model from its directory under the repository. */
  async load(name: string): Promise<ServedModel> {
    checkName(name);
    let e = this.entries.get(name);
    if (!e) {
      if (this.single) throw new RepositoryError(404, `unknown model ${name} (this server serves one model directory)`);
      const dir = join(this.root, name);
      if (!existsSync(join(dir, META_FILE))) throw new RepositoryError(404, `no model directory ${name} in the repository (no ${META_FILE})`);
      e = { name, dir, state: 'UNAVAILABLE' };
      this.entries.set(name, e);
    }
    if (e.loading) return e.loading;
    const entry = e;
    entry.state = 'LOADING';
    entry.loading = (async () => {
      try {
        const m = await ServedModel.load(name, entry.dir, this.settings);
        entry.model?.dispose();
        entry.model = m;
        entry.state = 'READY';
        entry.reason = undefined;
        return m;
      } catch (err) {
        entry.state = entry.model ? 'READY' : 'UNAVAILABLE';
        entry.reason = (err as Error).message;
        throw new RepositoryError(entry.model ? 409 : 422, `model ${name} could not be loaded: ${(err as Error).message}`);
      } finally {
        entry.loading = undefined;
      }
    })();
    return entry.loading;
  }

  /** Unloads a model (its files stay). */
  unload(name: string): void {
    checkName(name);
    const e = this.entries.get(name);
    if (!e) throw new RepositoryError(404, `unknown model ${name}`);
    e.model?.dispose();
    e.model = undefined;
    e.state = 'UNAVAILABLE';
    e.reason = 'unloaded';
  }

  /**
   * Stores an uploaded archive of a model directory as `<root>/<name>` and loads it. The archive is unpacked
   * into a temporary directory and loaded from there first: a broken model never replaces a good one.
   */
  async upload(name: string, body: Uint8Array): Promise<ServedModel> {
    checkName(name);
    if (this.single) throw new RepositoryError(403, 'uploads need a repository directory (--models DIR with one subdirectory per model)');
    const target = join(this.root, name);
    const exists = existsSync(target);
    if (exists && !this.o.allowOverwrite) throw new RepositoryError(409, `model ${name} exists; the server was not started with --allow-overwrite`);
    let files;
    try {
      files = unpackArchive(body, this.o.maxUnpackedBytes);
    } catch (e) {
      throw new RepositoryError(400, (e as Error).message);
    }
    if (!files.some((f) => f.path === META_FILE)) throw new RepositoryError(400, `the archive is not a hep-ml model directory (no ${META_FILE} at its top)`);
    const tmp = await makeTempDir(this.root, `upload-${name}-`);
    try {
      for (const f of files) {
        const p = join(tmp.path, f.path);
        await mkdir(dirname(p), { recursive: true });
        await writeFile(p, f.data);
      }
      let probe: ServedModel;
      try {
        probe = await ServedModel.load(name, tmp.path, this.settings);
      } catch (e) {
        throw new RepositoryError(422, `the uploaded model cannot be loaded: ${(e as Error).message}`);
      }
      probe.dispose();
      if (exists) {
        const old = `${target}.old-${process.pid}-${Date.now()}`;
        await rename(target, old);
        await rename(tmp.path, target);
        await rm(old, { recursive: true, force: true });
      } else {
        await rename(tmp.path, target);
      }
    } finally {
      await tmp.remove();
    }
    const e = this.entries.get(name);
    if (e) e.dir = target;
    return this.load(name);
  }

  /** Whether `name` is a directory in the repository (for messages). */
  async onDisk(name: string): Promise<boolean> {
    return stat(join(this.root, name)).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }

  close(): void {
    for (const e of this.entries.values()) e.model?.dispose();
  }
}
