/**
 * Metrics: named methods write the series the README lists, on a private registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { register as globalRegistry } from 'prom-client';
import { Metrics } from '../../src/server/metrics.js';
import { sample } from './fixtures.js';

test('every method writes its series with target/outcome labels only', async () => {
  const m = new Metrics({ defaultMetrics: false });
  m.webhookEvent('value', 'accepted');
  m.webhookEvent('value', 'accepted');
  m.render('nginx-tls', 'committed');
  m.render('nginx-tls', 'unchanged');
  m.reload('nginx-tls', 'ok');
  m.fetch('failed');
  m.observeEventToFile(0.003);
  m.observeEventToReload(0.2);
  m.observeEventToReload(-1); // dropped
  m.tokenExpiry(1_750_000_000_000);
  m.targetSuccess('nginx-tls', 1_750_000_123_000);
  m.targetUp('pgbouncer', false);
  m.ready(true);
  const text = await m.text();
  assert.equal(sample(text, 'reloader_webhook_events_total{type="value",outcome="accepted"}'), 2);
  assert.equal(sample(text, 'reloader_renders_total{target="nginx-tls",outcome="committed"}'), 1);
  assert.equal(sample(text, 'reloader_renders_total{target="nginx-tls",outcome="unchanged"}'), 1);
  assert.equal(sample(text, 'reloader_reloads_total{target="nginx-tls",outcome="ok"}'), 1);
  assert.equal(sample(text, 'reloader_infisical_fetches_total{outcome="failed"}'), 1);
  assert.equal(sample(text, 'reloader_event_to_file_seconds_bucket{le="0.001"}'), 0);
  assert.equal(sample(text, 'reloader_event_to_file_seconds_bucket{le="0.005"}'), 1);
  assert.equal(sample(text, 'reloader_event_to_reload_seconds_count'), 1);
  assert.equal(sample(text, 'reloader_event_to_reload_seconds_bucket{le="60"}'), 1);
  assert.equal(sample(text, 'reloader_access_token_expiry_timestamp_seconds'), 1_750_000_000);
  assert.equal(
    sample(text, 'reloader_target_last_success_timestamp_seconds{target="nginx-tls"}'),
    1_750_000_123,
  );
  assert.equal(sample(text, 'reloader_target_up{target="nginx-tls"}'), 1);
  assert.equal(sample(text, 'reloader_target_up{target="pgbouncer"}'), 0);
  assert.equal(sample(text, 'reloader_ready'), 1);
  assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
});

test('an unknown token expiry is NaN, not 0 (an expiry alert must not fire on "unknown")', async () => {
  const m = new Metrics({ defaultMetrics: false });
  assert.ok(Number.isNaN(sample(await m.text(), 'reloader_access_token_expiry_timestamp_seconds')));
  m.tokenExpiry(2_000);
  assert.equal(sample(await m.text(), 'reloader_access_token_expiry_timestamp_seconds'), 2);
  m.tokenExpiry(undefined);
  assert.ok(Number.isNaN(sample(await m.text(), 'reloader_access_token_expiry_timestamp_seconds')));
});

test('declareTargets creates zeroed series so a target shows before its first event', async () => {
  const m = new Metrics({ defaultMetrics: false });
  m.declareTargets(['web']);
  const text = await m.text();
  assert.equal(sample(text, 'reloader_renders_total{target="web",outcome="failed"}'), 0);
  assert.equal(sample(text, 'reloader_reloads_total{target="web",outcome="skipped"}'), 0);
  assert.equal(sample(text, 'reloader_target_up{target="web"}'), 0);
});

test('instances are independent, stay off the global registry, and carry the standard process metrics under their standard names', async () => {
  const a = new Metrics();
  const b = new Metrics();
  a.fetch('ok');
  assert.equal(sample(await a.text(), 'reloader_infisical_fetches_total{outcome="ok"}'), 1);
  assert.equal(sample(await b.text(), 'reloader_infisical_fetches_total{outcome="ok"}'), 0);
  const text = await a.text();
  // the names stock Node.js dashboards query
  assert.match(text, /^process_cpu_user_seconds_total /m);
  assert.match(text, /^process_resident_memory_bytes /m);
  assert.match(text, /^nodejs_heap_size_total_bytes /m);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  assert.doesNotMatch(text, /^reloader_process_/m);
  assert.equal((await globalRegistry.metrics()).includes('reloader_'), false);
});

test('Prometheus conventions: _total only on counters, build_info, failure series at 0 from the start', async () => {
  const m = new Metrics({ defaultMetrics: false });
  const text = await m.text();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (match) types.set(match[1] as string, match[2] as string);
  }
  for (const [name, type] of types) {
    if (name.endsWith('_total')) assert.equal(type, 'counter', `${name} ends in _total`);
    if (type === 'counter') assert.ok(name.endsWith('_total'), `counter ${name} ends in _total`);
  }
  assert.match(text, /^reloader_build_info\{version="[^"]+",node="[^"]+"\} 1$/m);
  for (const series of [
    'reloader_infisical_fetches_total{outcome="failed"}',
    'reloader_webhook_events_total{type="invalid",outcome="rejected_401"}',
    'reloader_webhook_events_total{type="invalid",outcome="rejected_400"}',
    'reloader_peer_relay_total{outcome="failed"}',
    'reloader_peer_relay_total{outcome="rejected"}',
  ]) {
    assert.equal(sample(text, series), 0, `${series} exists at 0`);
  }
  m.declareTargets(['web']);
  assert.equal(sample(await m.text(), 'reloader_reloads_total{target="web",outcome="failed"}'), 0);
});
