import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/server/metrics.js';

test('reloader_target_error carries the code of the failing pass only while it fails; verifications are counted', async () => {
  const m = new Metrics({ defaultMetrics: false });
  m.targetError('a', 'RLD_ERR_CHECK');
  m.targetError('b', 'RLD_ERR_VERIFY');
  m.verify('b', 'failed');
  m.verify('b', 'ok');
  let text = await m.text();
  assert.match(text, /reloader_target_error\{target="a",code="RLD_ERR_CHECK"\} 1/);
  assert.match(text, /reloader_target_error\{target="b",code="RLD_ERR_VERIFY"\} 1/);
  assert.match(text, /reloader_verifications_total\{target="b",outcome="failed"\} 1/);
  assert.match(text, /reloader_verifications_total\{target="b",outcome="ok"\} 1/);
  m.targetError('a', 'RLD_ERR_RELOAD');
  m.targetError('b', undefined);
  text = await m.text();
  assert.doesNotMatch(text, /code="RLD_ERR_CHECK"/, 'the old code is gone');
  assert.match(text, /reloader_target_error\{target="a",code="RLD_ERR_RELOAD"\} 1/);
  assert.doesNotMatch(
    text,
    /target_error\{target="b"/,
    'a target that recovered has no error series',
  );
});
