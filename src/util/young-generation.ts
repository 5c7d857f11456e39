/**
 * The daemon's young-generation policy (bench 5, memory).
 */
import { setFlagsFromString } from 'node:v8';

/**
 * Keep V8's young generation at the size it has now instead of letting it double, up to its
 * 32 MiB maximum (2 × 16 MiB semi-spaces), after each burst of allocation — a size V8 then
 * keeps, resident, while the daemon idles (it shrinks it only in a full GC that follows
 * seconds of low allocation, and an idle daemon runs none). A sidecar allocates in bursts
 * (start-up, a full fetch, a render pass) between long idle stretches, so a bigger young
 * generation only saves scavenges during the bursts. Measured on the scale scenario of
 * bench 5 (10,000 secrets, 500 targets): the young generation stays at 16 MiB instead of
 * 32 MiB (≈ −10 MiB RSS); scavenges 43 → 71 and ≈ +30 ms of GC in total during start-up; no
 * change in event-to-file latency (p50 ≈ 10–15 ms either way). Objects that outlive a small
 * young generation are promoted sooner; the old generation's size still follows the live
 * data. main.ts hands it to the CLI, which calls it first thing in the `run` and `dev`
 * commands (before the spec is even read: the earlier, the smaller the young generation stays —
 * set after loading the spec and fastify it held 16 MiB; set before, the scale scenario ended
 * at ≈ 95 MiB instead of ≈ 107 MiB); a library user's process is left alone. Not from process
 * start: with the initial 1 MiB young generation that meant ≈ 560 scavenges and ≈ +1 s to
 * ready at 10,000 secrets.
 *
 * Node warns that V8 flags changed after start-up may do nothing or misbehave; this one is a
 * growth heuristic V8 reads when it sizes the young generation after a scavenge (no heap
 * layout depends on it), and every end-to-end test runs the daemon process with it set.
 */
export function limitYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
