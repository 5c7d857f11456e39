/**
 * The package's library entry (`import { SecretSubscriber } from 'infisical-reloader'`): the
 * subscriber API for Node applications, its option types, and the error class its failures
 * are instances of. The CLI is `dist/src/main.js` (the `bin`).
 */
export { SecretSubscriber, ALL_KEYS, type SecretCallback } from './library/subscriber.js';
export type {
  AdminOptions,
  AuthOptions,
  Duration,
  InfisicalOptions,
  KubernetesAuthOptions,
  SourceOptions,
  SubscriberOptions,
  WebhookOptions,
} from './library/options.js';
export { ReloaderError, ERROR_CODES, type ErrorCode } from './errors.js';
