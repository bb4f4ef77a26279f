import { describe, expect, it } from 'vitest';
import { canaryCount, formatCanarySize, parseCanarySize } from '../agent/canary-size.js';
import { canaryAsk, resolveCanary } from '../services/server/canary.js';
import { HEALTH_DEFAULTS } from '../agent/manifest.js';

describe('canary sizes', () => {
  it('reads n and n%, 0 as none, and nothing else', () => {
    expect(parseCanarySize('2')).toEqual({ count: 2 });
    expect(parseCanarySize(3)).toEqual({ count: 3 });
    expect(parseCanarySize(' 25% ')).toEqual({ percent: 25 });
    expect(parseCanarySize('0')).toBeNull();
    expect(parseCanarySize('0%')).toBeNull();
    for (const bad of ['', '%', '-1', '1.5', '101%', '1001', '10 %', 'two', true, null, 2.5]) expect(parseCanarySize(bad), String(bad)).toBeUndefined();
    expect(formatCanarySize({ percent: 10 })).toBe('10%');
    expect(formatCanarySize({ count: 4 })).toBe('4');
  });

  it('rounds a percentage up to at least one, and never past the total', () => {
    expect(canaryCount({ percent: 1 }, 3)).toBe(1);
    expect(canaryCount({ percent: 34 }, 3)).toBe(2);
    expect(canaryCount({ percent: 50 }, 4)).toBe(2);
    expect(canaryCount({ percent: 100 }, 4)).toBe(4);
    expect(canaryCount({ count: 1 }, 8)).toBe(1);
    expect(canaryCount({ count: 5 }, 2)).toBe(2);
  });
});

describe('the canary a push runs', () => {
  const health = { ...HEALTH_DEFAULTS, windowMs: 12_000 };

  it('takes the request over the settings, the settings over nothing, and canary=0 over both', () => {
    expect(resolveCanary(canaryAsk({ canary: '2' }), { health })).toEqual({ size: { count: 2 }, watchMs: 12_000, source: 'request' });
    expect(resolveCanary(canaryAsk({}), { health, canary: { size: { percent: 10 }, watchMs: 5_000 } }))
      .toEqual({ size: { percent: 10 }, watchMs: 5_000, source: 'settings' });
    expect(resolveCanary(canaryAsk({ canaryWatchMs: '900' }), { health, canary: { size: { count: 1 } } }))
      .toEqual({ size: { count: 1 }, watchMs: 900, source: 'settings' });
    expect(resolveCanary(canaryAsk({ canary: '0' }), { health, canary: { size: { count: 1 } } })).toBeUndefined();
    expect(resolveCanary(canaryAsk({}), { health })).toBeUndefined();
  });

  it('watches for the health window, or 30 s when the window is off', () => {
    expect(resolveCanary({ size: { count: 1 } }, { health: false })?.watchMs).toBe(30_000);
    expect(resolveCanary({ size: { count: 1 } }, { health: { ...health, windowMs: 0 } })?.watchMs).toBe(30_000);
    expect(resolveCanary({ size: { count: 1 } }, {})?.watchMs).toBe(HEALTH_DEFAULTS.windowMs);
  });

  it('refuses what it cannot read with DEPLOY_ERR_CANARY', () => {
    for (const query of [{ canary: 'x' }, { canary: '200%' }, { canaryWatchMs: '50' }, { canaryWatchMs: '1e4' }, { canary: '1', activate: false }]) {
      expect(() => canaryAsk(query), JSON.stringify(query)).toThrow(expect.objectContaining({ code: 'DEPLOY_ERR_CANARY', statusCode: 400 }));
    }
  });
});
