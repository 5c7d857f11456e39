/**
 * Plumbing for the end-to-end tests with real processes (nginx, pgbouncer, PostgreSQL, the
 * example apps), in one import. Rules every helper keeps: everything binds 127.0.0.1; every
 * process a helper starts is stopped by its pid in `t.after`, even when the test failed; every
 * wait has a timeout and says what it saw last; a secret never goes on a command line.
 *
 *  - process.ts    prerequisites (skip loudly / fail under REQUIRE_E2E=1), freePort, run,
 *                  spawnCollect, childrenOf, stopPid
 *  - nginx-tls.ts  selfSigned certs, tlsPeer/tlsSubject/tlsFingerprint, startNginx,
 *                  waitForSingleWorker
 *  - postgres.ts   startPostgres, startPgbouncer, psql, openSession (runuser -u postgres)
 *  - daemon.ts     startDaemon (the built CLI), seedYaml, logTimeline
 */
export * from './process.js';
export * from './nginx-tls.js';
export * from './postgres.js';
export * from './daemon.js';
