/** Shared helpers for the template tests: render a source string against plain objects. */
import assert from 'node:assert/strict';
import { compileTemplate, type RenderResult } from '../../src/template/index.js';
import { ReloaderError, type ErrorCode } from '../../src/errors.js';

export interface Ctx {
  secrets?: Record<string, string>;
  env?: Record<string, string | undefined>;
  target?: string;
}

/** Compile `source` as `name` and render it once. */
export function render(source: string, ctx: Ctx = {}, name = 't.hbs'): RenderResult {
  return compileTemplate(name, source).render({
    secrets: new Map(Object.entries(ctx.secrets ?? {})),
    env: ctx.env ?? {},
    target: { name: ctx.target ?? 'target-1' },
  });
}

/** The rendered text only. */
export function out(source: string, ctx: Ctx = {}): string {
  return render(source, ctx).output;
}

/** Run `fn`, assert it throws a ReloaderError with `code`, and return that error. */
export function thrown(fn: () => unknown, code: ErrorCode): ReloaderError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof ReloaderError,
    `expected a ReloaderError ${code}, got ${String(caught)}`,
  );
  assert.equal(caught.code, code, `wrong code; message was: ${caught.message}`);
  return caught;
}

/** The error `render(source, ctx)` throws, asserted to carry `code`. */
export function renderError(source: string, ctx: Ctx, code: ErrorCode): ReloaderError {
  return thrown(() => render(source, ctx), code);
}

/** The error compiling `source` throws (always RLD_ERR_TEMPLATE). */
export function compileError(source: string, name = 't.hbs'): ReloaderError {
  return thrown(() => compileTemplate(name, source), 'RLD_ERR_TEMPLATE');
}
