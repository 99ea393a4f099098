/**
 * Formats generated text exactly as `prettier --write` would at `filepath` in this repository
 * (its configuration is resolved from there), so a generated file stays byte-identical after
 * `make manifests` / `make fmt` and the drift tests compare like with like. Used only by the
 * generators: prettier is a development dependency.
 */
import { format, resolveConfig } from 'prettier';

export async function formatLikeRepository(filepath: string, text: string): Promise<string> {
  const options = await resolveConfig(filepath, { editorconfig: true });
  return format(text, { ...options, filepath });
}
