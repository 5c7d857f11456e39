/**
 * Preloaded (`--import`) into every process whose RSS bench 5 reads, the bare node baseline and
 * the daemon alike: with `--expose-gc`, SIGUSR2 runs a full garbage collection, so that both are
 * measured settled and collected, the same way.
 */
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
});
