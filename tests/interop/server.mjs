// Starts the real imagemcp binary for an interop suite: a fresh data dir, an API key made by
// `imagemcp keys create`, the offline model (no OPENAI_API_KEY), JSON logs, and the URL it prints.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const root = resolve(import.meta.dirname, '../..');
const bin = process.env.IMAGEMCP_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'imagemcp');

/** Starts a server; resolves to `{ url, key, stop }` once it listens. */
export async function startServer(prefix) {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const env = { ...process.env, IMAGEMCP_LOG_FORMAT: 'json' };
  delete env.OPENAI_API_KEY;
  const key = execFileSync(bin, ['keys', 'create', '--data-dir', dataDir], { env, encoding: 'utf8' }).trim();
  const server = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--data-dir', dataDir], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = createInterface({ input: server.stdout });
  const url = await new Promise((ok, fail) => {
    lines.on('line', (line) => line.startsWith('imagemcp listening on ') && ok(line.slice('imagemcp listening on '.length).trim()));
    server.on('exit', (code) => fail(new Error(`imagemcp exited with ${code}`)));
  });
  return { url, key, stop: () => server.kill('SIGTERM') };
}
