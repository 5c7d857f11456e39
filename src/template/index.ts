/**
 * The template layer: compile once with `compileTemplate` (every syntax and helper
 * error surfaces here, before any network call), then `render` against the merged secrets, the
 * environment and the target's name. See `engine.ts` for the contract and `helpers.ts` for the
 * helpers and which of them accept a missing key.
 */
export {
  compileTemplate,
  TemplateRenderError,
  type CompiledTemplate,
  type RenderContext,
  type RenderResult,
} from './engine.js';
