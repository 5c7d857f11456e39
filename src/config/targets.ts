/**
 * The `targets` part of the spec: files (template or inline contents, destination, mode,
 * owner), the optional `check` command and the optional `reload` action, with the cross-field
 * rules of the spec format — unique target names, unique destinations across all targets, exactly
 * one of template/contents/pkcs12, exactly one reload kind, exactly one signal recipient, exactly
 * one verify kind, every file of an `atomic: set` target in one directory.
 */
import { dirname } from 'node:path';
import type {
  CommandSpec,
  FileSpec,
  Pkcs12Spec,
  ReloadSpec,
  TargetSpec,
  VerifySpec,
  WaitSpec,
} from './types.js';
import { DEFAULTS, buildWait } from './reader.js';
import type { SpecReader } from './reader.js';
import type { Segment } from './source.js';
import { parseHttpUrl, parseListen, parseSignal } from './validate.js';

type Raw = Record<string, unknown>;

/** Builds every target; fails on duplicate names or destinations, pointing at the second one. */
export function buildTargets(
  reader: SpecReader,
  defaultMode: number,
  defaultWait: WaitSpec,
): TargetSpec[] {
  const raw = reader.get<Raw[]>(['targets']) ?? [];
  const names = new Map<string, number>();
  const destinations = new Map<string, string>();
  return raw.map((_, index) => {
    const at: Segment[] = ['targets', index];
    const name = reader.get<string>([...at, 'name']) as string;
    const previous = names.get(name);
    if (previous !== undefined) {
      reader.fail([...at, 'name'], `duplicate target name "${name}" (also targets[${previous}])`);
    }
    names.set(name, index);
    const files = (reader.get<Raw[]>([...at, 'files']) ?? []).map((__, fileIndex) => {
      const file = buildFile(reader, [...at, 'files', fileIndex], defaultMode);
      const owner = destinations.get(file.destination);
      if (owner !== undefined) {
        reader.fail(
          [...at, 'files', fileIndex, 'destination'],
          `destination ${file.destination} is already written by ${owner}`,
        );
      }
      destinations.set(file.destination, `targets[${index}].files[${fileIndex}]`);
      return file;
    });
    const target: TargetSpec = {
      name,
      files,
      wait: buildWait(reader, [...at, 'wait'], defaultWait),
      origin: { yamlPath: reader.source.locate(at).yamlPath, line: reader.source.locate(at).line },
    };
    if (reader.has([...at, 'check'])) target.check = buildCheck(reader, [...at, 'check']);
    if (reader.has([...at, 'reload'])) target.reload = buildReload(reader, [...at, 'reload']);
    if (reader.get<string>([...at, 'atomic']) === 'set') {
      target.atomic = 'set';
      const dir = dirname(files[0]?.destination ?? '');
      const stray = files.findIndex((f) => dirname(f.destination) !== dir);
      if (stray >= 0) {
        reader.fail(
          [...at, 'files', stray, 'destination'],
          `atomic: set needs every file of the target in one directory (${dir}), but this one is in ${dirname(files[stray]?.destination ?? '')}`,
        );
      }
    }
    if (reader.has([...at, 'verify'])) target.verify = buildVerify(reader, [...at, 'verify']);
    if (target.verify && !target.reload) {
      reader.fail([...at, 'verify'], 'verify runs after the reload: the target needs a reload');
    }
    return target;
  });
}

function buildFile(reader: SpecReader, at: Segment[], defaultMode: number): FileSpec {
  const which = reader.exactlyOne(at, ['template', 'contents', 'pkcs12'], 'a file');
  const location = reader.source.locate(at);
  const file: FileSpec = {
    destination: reader.filePath([...at, 'destination']) as string,
    mode: reader.mode([...at, 'mode'], defaultMode),
    createDirs: reader.get<boolean>([...at, 'createDirs']) ?? true,
    origin: { yamlPath: location.yamlPath, line: location.line },
  };
  if (which === 'template') file.template = reader.filePath([...at, 'template']) as string;
  else if (which === 'contents') file.contents = reader.get<string>([...at, 'contents']) as string;
  else file.pkcs12 = { ...(reader.get<Pkcs12Spec>([...at, 'pkcs12']) as Pkcs12Spec) };
  if (reader.get<boolean>([...at, 'reloadOnChange']) === false) file.reloadOnChange = false;
  if (reader.get<string>([...at, 'encoding']) === 'base64') {
    if (which === 'pkcs12') reader.fail([...at, 'encoding'], 'a pkcs12 file is binary already');
    file.encoding = 'base64';
  }
  const uid = reader.get<number>([...at, 'uid']);
  const gid = reader.get<number>([...at, 'gid']);
  if (uid !== undefined) file.uid = uid;
  if (gid !== undefined) file.gid = gid;
  return file;
}

/** argv from the spec: numbers become text (`[sleep, 1]`), the program name must not be empty. */
function argv(reader: SpecReader, at: Segment[]): string[] {
  const list = (reader.get<(string | number)[]>(at) ?? []).map(String);
  if (list.length === 0) reader.fail(at, 'command must not be empty');
  if (list[0] === '') reader.fail([...at, 0], 'the program name must not be empty');
  return list;
}

function buildCheck(reader: SpecReader, at: Segment[]): CommandSpec {
  const timeoutMs = reader.duration([...at, 'timeout'], DEFAULTS.commandTimeout);
  if (timeoutMs <= 0) reader.fail([...at, 'timeout'], 'must be longer than 0');
  return { command: argv(reader, [...at, 'command']), timeoutMs };
}

function buildReload(reader: SpecReader, at: Segment[]): ReloadSpec {
  const kind = reader.exactlyOne(at, ['signal', 'command', 'http'], 'reload');
  const timeoutMs = reader.duration([...at, 'timeout'], DEFAULTS.commandTimeout);
  if (timeoutMs <= 0) reader.fail([...at, 'timeout'], 'must be longer than 0');
  const recipients = ['pid', 'pidFile', 'processName'] as const;
  if (kind !== 'signal') {
    const stray = recipients.find((key) => reader.has([...at, key]));
    if (stray !== undefined)
      reader.fail([...at, stray], `${stray} only applies to a signal reload`);
  }
  if (kind === 'command') return { kind, command: argv(reader, [...at, 'command']), timeoutMs };
  if (kind === 'http') {
    const http = [...at, 'http'];
    const url = reader.convert([...http, 'url'], () =>
      parseHttpUrl(reader.get<string>([...http, 'url']) ?? ''),
    );
    const method = (reader.get<string>([...http, 'method']) ?? DEFAULTS.httpMethod).toUpperCase();
    const spec: Extract<ReloadSpec, { kind: 'http' }> = { kind, url, method, timeoutMs };
    const headers = reader.get<Record<string, string>>([...http, 'headers']);
    if (headers !== undefined) spec.headers = { ...headers };
    return spec;
  }
  const signal = reader.convert([...at, 'signal'], () =>
    parseSignal(reader.get<string>([...at, 'signal']) ?? ''),
  );
  const recipient = reader.exactlyOne(at, recipients, 'a signal reload');
  const spec: Extract<ReloadSpec, { kind: 'signal' }> = { kind, signal, timeoutMs };
  if (recipient === 'pid') spec.pid = reader.get<number>([...at, 'pid']) as number;
  else if (recipient === 'pidFile') spec.pidFile = reader.filePath([...at, 'pidFile']) as string;
  else spec.processName = reader.get<string>([...at, 'processName']) as string;
  return spec;
}

function buildVerify(reader: SpecReader, at: Segment[]): VerifySpec {
  const kind = reader.exactlyOne(at, ['tls', 'http', 'command'], 'verify');
  const timeoutMs = reader.duration([...at, 'timeout'], DEFAULTS.commandTimeout);
  if (timeoutMs <= 0) reader.fail([...at, 'timeout'], 'must be longer than 0');
  const common = {
    timeoutMs,
    attempts: reader.get<number>([...at, 'attempts']) ?? DEFAULTS.verifyAttempts,
    intervalMs: reader.duration([...at, 'interval'], DEFAULTS.verifyInterval),
  };
  if (kind === 'command') return { ...common, kind, command: argv(reader, [...at, 'command']) };
  if (kind === 'http') {
    const url = reader.convert([...at, 'http', 'url'], () =>
      parseHttpUrl(reader.get<string>([...at, 'http', 'url']) ?? ''),
    );
    return { ...common, kind, url, status: reader.get<number>([...at, 'http', 'status']) ?? 200 };
  }
  const tls = [...at, 'tls'];
  const { host, port } = reader.convert([...tls, 'address'], () =>
    parseListen(reader.get<string>([...tls, 'address']) ?? ''),
  );
  const spec: VerifySpec = { ...common, kind, host, port };
  const serverName = reader.get<string>([...tls, 'serverName']);
  if (serverName !== undefined) spec.serverName = serverName;
  if (reader.get<string>([...tls, 'startTls']) === 'postgres') spec.startTls = 'postgres';
  const certificate = reader.filePath([...tls, 'certificate']);
  if (certificate !== undefined) spec.certificate = certificate;
  return spec;
}
