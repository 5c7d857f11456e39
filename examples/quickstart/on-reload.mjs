// The quickstart's "app": the reload command prints which files it re-read and their hashes
// (never their contents), the way a real app would re-read its config on SIGHUP.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const stamp = new Date().toISOString();
for (const file of process.argv.slice(2)) {
  const hash = createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12);
  console.log(`[app ${stamp}] reloaded ${file} (sha256 ${hash})`);
}
