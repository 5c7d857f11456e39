/**
 * The `infisical.com/*` annotations the injector reads, what each accepts, and how the two
 * places they may be written combine: the pod template's annotations win over the workload's
 * own (a Deployment's `metadata`, where the integration guide puts them). Pure: no I/O.
 *
 * A bad value is refused as a whole (the pod is not created) with a message naming the
 * annotation and the accepted values: a half-wired pod that starts without its files is worse
 * than a clear refusal at `kubectl apply`.
 */

export const PREFIX = 'infisical.com/';

/** What one annotation accepts: a description for the message and a check. */
interface AnnotationRule {
  accepted: string;
  ok: (value: string) => boolean;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SIGNALS = ['HUP', 'USR1', 'USR2', 'TERM', 'INT', 'QUIT', 'WINCH'];

/** Every annotation the injector reads, with its rule. */
export const RULES = {
  auth: { accepted: 'kubernetes', ok: (v) => v === 'kubernetes' },
  'auto-renewal': { accepted: '"true"', ok: (v) => v === 'true' },
  mode: { accepted: 'sidecar, init', ok: (v) => v === 'sidecar' || v === 'init' },
  environment: {
    accepted: 'an environment slug (letters, digits, "-", "_")',
    ok: (v) => /^[A-Za-z0-9_-]{1,64}$/.test(v),
  },
  'secret-path': {
    accepted: 'an absolute secret path such as / or /apps/api',
    ok: (v) =>
      /^\/([A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*)?\/?$/.test(v) && !/(^|\/)\.\.?(\/|$)/.test(v),
  },
  'project-id': {
    accepted: 'a project id (no spaces)',
    ok: (v) => /^[A-Za-z0-9_-]{1,128}$/.test(v),
  },
  'identity-id': {
    accepted: 'a machine identity id (no spaces)',
    ok: (v) => /^[A-Za-z0-9_-]{1,128}$/.test(v),
  },
  'api-url': {
    accepted: 'an http:// or https:// URL ending in /api',
    ok: (v) => /^https?:\/\/[^\s/$]+(\/[^\s$]*)?\/api\/?$/.test(v),
  },
  'reloader-config': {
    accepted: 'the name of a ConfigMap in the pod’s namespace',
    ok: (v) => DNS_SUBDOMAIN.test(v),
  },
  'output-path': {
    accepted:
      'an absolute directory path of its own, not / or a system folder such as /etc (letters, digits, "/", ".", "-", "_")',
    ok: (v) =>
      /^(\/[A-Za-z0-9_.-]+)+\/?$/.test(v) &&
      !/(^|\/)\.\.?(\/|$)/.test(v) &&
      !/^\/(proc|sys|dev|var\/run\/secrets)(\/|$)/.test(v) &&
      !/^\/(etc|usr|bin|sbin|lib|lib64|var|tmp|root|home|opt|run|boot)\/?$/.test(v),
  },
  'reload-signal': {
    accepted: `${SIGNALS.join(', ')} (with or without SIG)`,
    ok: (v) => SIGNALS.includes(v.replace(/^SIG/, '')),
  },
  'reload-process': {
    accepted: 'a process name as in /proc/<pid>/comm (1-15 of letters, digits, ".", "_", "-", "+")',
    ok: (v) => /^[A-Za-z0-9._+-]{1,15}$/.test(v),
  },
  'webhook-secret': {
    accepted: 'the name of a Secret (key webhook-secret) in the pod’s namespace',
    ok: (v) => DNS_SUBDOMAIN.test(v),
  },
  'webhook-port': {
    accepted: 'a port number, 1-65535, that no container of the pod declares',
    ok: (v) => /^[1-9][0-9]{0,4}$/.test(v) && Number(v) <= 65535,
  },
  peers: {
    accepted: 'the name of a headless Service in the pod’s namespace, or its full DNS name',
    ok: (v) => DNS_LABEL.test(v) || DNS_SUBDOMAIN.test(v),
  },
} satisfies Record<string, AnnotationRule>;

export type AnnotationName = keyof typeof RULES;

/** The settings an object asks for, by annotation (short name → value), checked. */
export type Annotations = Partial<Record<AnnotationName, string>>;

export type AnnotationsRead =
  { inject: false } | { inject: true; values: Annotations } | { inject: false; refused: string };

/** Shown values are cut short: an annotation is not a secret, but it may be long. */
function shown(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

/**
 * The annotations of one object: `template` (the pod template's, or a Pod's own) over
 * `workload` (a Deployment's, StatefulSet's or DaemonSet's own `metadata`). Injection is asked
 * for by `infisical.com/auth` in either. Each value is checked; the first bad one refuses the
 * object, naming the annotation, the value and what is accepted. Unknown `infisical.com/*`
 * annotations are left alone (other tools share the prefix).
 */
export function readAnnotations(
  workload: Record<string, unknown> | undefined,
  template: Record<string, unknown> | undefined,
): AnnotationsRead {
  const merged: Record<string, unknown> = { ...(workload ?? {}), ...(template ?? {}) };
  if (merged[`${PREFIX}auth`] === undefined) return { inject: false };
  const values: Annotations = {};
  for (const [name, rule] of Object.entries(RULES) as Array<[AnnotationName, AnnotationRule]>) {
    const raw = merged[PREFIX + name];
    if (raw === undefined) continue;
    const value = typeof raw === 'string' ? raw : String(raw);
    if (!rule.ok(value)) {
      return {
        inject: false,
        refused: `annotation ${PREFIX}${name}: ${shown(value)} is not accepted; accepted: ${rule.accepted}`,
      };
    }
    values[name] = value;
  }
  if (values['reload-signal'] !== undefined && values['reload-process'] === undefined) {
    return {
      inject: false,
      refused: `annotation ${PREFIX}reload-signal needs ${PREFIX}reload-process: the name of the process to signal`,
    };
  }
  return { inject: true, values };
}
