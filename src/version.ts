/** hep-ml's version, from package.json (one level above src/ and dist/). */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function hepMlVersion(): string {
  if (cached === undefined) {
    try {
      cached = String((JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '');
    } catch {
      cached = '';
    }
  }
  return cached;
}
