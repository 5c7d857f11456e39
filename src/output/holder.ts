/**
 * Who holds a lock, and whether that process still lives.
 *
 * Every lock directory holds an `owner` file written by its taker: the process id, the
 * process's start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot), the kernel's
 * boot id, the host name, the pid and network namespaces (`/proc/self/ns/{pid,net}`), the name
 * of an abstract Unix socket the process listens on, and a per-lock counter. A later taker
 * reads it and judges the holder:
 *
 * - `dead` when it is certain: same boot and same pid namespace, and no process with that pid
 *   started at that tick (a pid reused by another process has another start time); or same
 *   boot and same network namespace (two containers of one pod share it, a restarted container
 *   gets a new pid namespace), and the holder's abstract socket refuses connections — the
 *   kernel closes it when its process dies, however it dies; or the same host name with
 *   another boot id (the machine rebooted).
 * - `alive` when the same checks find it (a live process whose event loop is stalled still
 *   accepts on its socket: the kernel queues the connection).
 * - `unknown` otherwise (another host on a shared network volume, no `/proc`, an owner file
 *   not written yet or from an older version): the mtime rule decides, a lock not refreshed
 *   for the stale time is broken.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { hostname } from 'node:os';

/** What a lock's `owner` file records. */
export interface HolderIdentity {
  pid: number;
  /** Start time of the process, clock ticks since boot (`/proc/<pid>/stat` field 22). */
  start?: string;
  boot?: string;
  host: string;
  pidns?: string;
  netns?: string;
  /** Abstract Unix socket name (without the leading NUL) the holder listens on. */
  sock?: string;
  /** Tells apart two locks taken by one process. */
  n: number;
}

export type HolderState = 'alive' | 'dead' | 'unknown';

function readOr(path: string, read: (p: string) => string): string | undefined {
  try {
    return read(path).trim();
  } catch {
    return undefined;
  }
}

/** Field 22 (starttime) of `/proc/<pid>/stat`; the command name (field 2) may hold spaces. */
export function startTimeOf(pid: number | 'self'): string | undefined {
  const stat = readOr(`/proc/${pid}/stat`, (p) => fs.readFileSync(p, 'utf8'));
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19]; // fields[0] is field 3 (state)
}

interface Self extends Omit<HolderIdentity, 'n' | 'sock'> {
  sock?: string;
}

let self: Self | undefined;
let listening: Promise<void> | undefined;
let locksTaken = 0;

function me(): Self {
  self ??= {
    pid: process.pid,
    start: startTimeOf('self'),
    boot: readOr('/proc/sys/kernel/random/boot_id', (p) => fs.readFileSync(p, 'utf8')),
    host: hostname(),
    pidns: readOr('/proc/self/ns/pid', fs.readlinkSync),
    netns: readOr('/proc/self/ns/net', fs.readlinkSync),
  };
  return self;
}

/**
 * Listen on this process's abstract socket (once; later calls wait for the first). It never
 * keeps the process alive and answers nothing: a connection is closed at once. Where abstract
 * sockets do not exist (not Linux) the identity simply has no `sock`.
 */
export function listenForLiveness(): Promise<void> {
  listening ??= new Promise<void>((resolve) => {
    const s = me();
    if (process.platform !== 'linux' || s.netns === undefined) {
      resolve();
      return;
    }
    const name = `infisical-reloader-${process.pid}-${randomBytes(8).toString('hex')}`;
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', () => resolve());
    server.listen({ path: `\0${name}` }, () => {
      server.unref();
      s.sock = name;
      resolve();
    });
  });
  return listening;
}

/** The text of a new lock's owner file (call `listenForLiveness` first). */
export function ownerRecord(): string {
  locksTaken += 1;
  return JSON.stringify({ ...me(), n: locksTaken } satisfies HolderIdentity);
}

/** The owner file's identity, or undefined when it is not one. */
export function parseOwner(text: string): HolderIdentity | undefined {
  try {
    const o = JSON.parse(text) as Partial<HolderIdentity>;
    return typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.n === 'number'
      ? (o as HolderIdentity)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Does a connection to abstract socket `name` succeed (alive), get refused (dead)? */
function probeSocket(name: string): Promise<HolderState> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: `\0${name}` });
    const done = (state: HolderState) => {
      socket.destroy();
      resolve(state);
    };
    socket.setTimeout(1000, () => done('unknown'));
    socket.once('connect', () => done('alive'));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'dead' : 'unknown'),
    );
  });
}

/** Judge the holder of a lock from its owner record (see the module comment). */
export async function holderState(owner: HolderIdentity): Promise<HolderState> {
  const s = me();
  if (owner.boot === undefined || s.boot === undefined) return 'unknown';
  if (owner.boot !== s.boot) return owner.host === s.host ? 'dead' : 'unknown';
  if (owner.pidns !== undefined && owner.pidns === s.pidns && owner.start !== undefined) {
    return startTimeOf(owner.pid) === owner.start ? 'alive' : 'dead';
  }
  if (owner.sock !== undefined && owner.netns !== undefined && owner.netns === s.netns) {
    return probeSocket(owner.sock);
  }
  return 'unknown';
}
