/**
 * The PyTorch peer of the training benchmark: runs bench/train-torch.py (one core: `--threads 1`,
 * OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1) and parses the one JSON line it prints.
 * Optional: when no Python with torch is found, torchPeer says why on stderr and returns null.
 *
 * Python: `opts.python`, else $HEP_ML_PYTHON, else the first of `python3` (on PATH) and `/usr/bin/python3` that
 * can `import torch` (Debian's python3-torch is only visible to the system python, and a pyenv or venv python3
 * may come first on PATH).
 *
 * Usage from a bench script:
 *   const peer = await torchPeer('gru', 'realistic', { steps: 10 });
 *   if (peer) console.log(peer.samplesPerS, peer.torch, peer.blas);
 * or standalone: node --import tsx bench/torch-peer.ts [gru|inclusive] [realistic|full] [steps]
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The script's path. */
export const TORCH_SCRIPT = fileURLToPath(new URL('./train-torch.py', import.meta.url));

/** What train-torch.py measured. */
export interface TorchPeerResult {
  /** Training samples per second: batch / median step time. */
  samplesPerS: number;
  /** torch.__version__. */
  torch: string;
  /** The BLAS the process loaded (and torch's build-time BLAS_INFO). */
  blas: string;
  /** Median time of one training step (forward, backward, Adam update), ms. */
  medianStepMs: number;
  /** Number of timed steps. */
  steps: number;
  /** Mean number of real (unpadded) GRU steps per sample of the data used. */
  meanLength: number;
  /** The Python executable that ran it. */
  python: string;
}

/** Options of {@link torchPeer}. */
export interface TorchPeerOptions {
  /** Timed steps (default 10). */
  steps?: number;
  /** Untimed warm-up steps first (default 3). */
  warmup?: number;
  /** The Python to use (default: see the module comment). */
  python?: string;
  /** Kill the run after this many ms (default 15 minutes). */
  timeoutMs?: number;
}

/**
 * PyTorch's training throughput for the CERN `model` at batch 128 on one core, or null (with the reason on
 * stderr) when no Python with torch is available. Throws when the script fails or prints no JSON line.
 */
export async function torchPeer(
  model: 'gru' | 'inclusive',
  lengths: 'realistic' | 'full',
  opts: TorchPeerOptions = {},
): Promise<null | TorchPeerResult> {
  const python = await findPython(opts.python);
  if (!python.ok) {
    process.stderr.write(`torch peer skipped: ${python.reason}\n`);
    return null;
  }
  const args = [TORCH_SCRIPT, '--model', model, '--lengths', lengths, '--steps', String(opts.steps ?? 10), '--warmup', String(opts.warmup ?? 3), '--threads', '1'];
  const env = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn(python.path, args, { env, stdio: ['ignore', 'pipe', 'inherit'], timeout: opts.timeoutMs ?? 15 * 60_000 });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${python.path} ${args.slice(0, 5).join(' ')} failed (${signal ? `signal ${signal}` : `exit ${code}`})`));
    });
  });
  const line = stdout
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('{'));
  if (!line) throw new Error(`train-torch.py printed no JSON line (stdout: ${JSON.stringify(stdout.slice(0, 200))})`);
  const j = JSON.parse(line) as Record<string, unknown>;
  const num = (k: string) => {
    const v = j[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`train-torch.py: '${k}' is not a number in ${line}`);
    return v;
  };
  return {
    samplesPerS: num('samples_per_s'),
    torch: String(j.torch),
    blas: String(j.blas ?? 'unknown'),
    medianStepMs: num('median_step_ms'),
    steps: num('steps'),
    meanLength: num('mean_length'),
    python: python.path,
  };
}

type Found = { ok: true; path: string } | { ok: false; reason: string };

async function findPython(explicit: string | undefined): Promise<Found> {
  const given = explicit ?? process.env.HEP_ML_PYTHON;
  const candidates = given ? [given] : ['python3', '/usr/bin/python3'];
  const reasons: string[] = [];
  for (const py of candidates) {
    const r = await importsTorch(py);
    if (r === true) return { ok: true, path: py };
    reasons.push(`${py}: ${r}`);
  }
  return { ok: false, reason: `no Python that can import torch (${reasons.join('; ')}); on Debian: apt-get install python3-torch` };
}

/** true, or why `python -c 'import torch'` failed. */
function importsTorch(python: string): Promise<true | string> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import torch'], { timeout: 120_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve(true);
      const last = String(stderr).trim().split('\n').at(-1);
      resolve(last || err.message);
    });
  });
}

// Standalone: node --import tsx bench/torch-peer.ts [model] [lengths] [steps]
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [m = 'gru', l = 'realistic', s = '10'] = process.argv.slice(2);
  if ((m !== 'gru' && m !== 'inclusive') || (l !== 'realistic' && l !== 'full')) {
    process.stderr.write('usage: node --import tsx bench/torch-peer.ts [gru|inclusive] [realistic|full] [steps]\n');
    process.exit(2);
  }
  const r = await torchPeer(m, l, { steps: Number(s) });
  process.stdout.write(JSON.stringify(r) + '\n');
}
