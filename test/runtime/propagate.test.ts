import { describe, expect, it } from 'vitest';
import { newHotState, type HotState } from '../../agent/runtime/hot-api.js';
import { propagate, type PropagationView } from '../../agent/runtime/propagate.js';

/** A graph from `child: [parents]` and per-module hot settings. */
function view(parents: Record<string, string[]>, hot: Record<string, Partial<HotState>> = {}, hostAcceptsEntry = true): PropagationView {
  const states = new Map<string, HotState>();
  for (const rel of new Set([...Object.keys(parents), ...Object.values(parents).flat(), ...Object.keys(hot)])) {
    states.set(rel, { ...newHotState(), ...hot[rel] });
  }
  return { parentsOf: (rel) => parents[rel] ?? [], hot: (rel) => states.get(rel), entry: 'index.js', hostAcceptsEntry };
}

const accepts = (...deps: string[]): Partial<HotState> =>
  ({ acceptedDeps: new Map(deps.map((d) => [d, { callback: undefined, errorHandler: undefined }])) });

describe('propagate (webpack getAffectedModuleEffects)', () => {
  it('stops at an accepting parent without making it outdated', () => {
    const result = propagate(view({ 'a.js': ['index.js'] }, { 'index.js': accepts('a.js') }), [{ rel: 'a.js', gone: false }]);
    expect(result).toEqual({ type: 'accepted', outdated: ['a.js'], acceptedBy: new Map([['index.js', ['a.js']]]), selfAccepted: [], entryReached: false });
  });

  it('bubbles through every parent of a diamond to the entry (host-accepted in handler mode)', () => {
    const graph = { 'leaf.js': ['left.js', 'right.js'], 'left.js': ['index.js'], 'right.js': ['index.js'] };
    const result = propagate(view(graph), [{ rel: 'leaf.js', gone: false }]);
    expect(result.type).toBe('accepted');
    if (result.type !== 'accepted') return;
    expect(new Set(result.outdated)).toEqual(new Set(['leaf.js', 'left.js', 'right.js', 'index.js']));
    expect(result.entryReached).toBe(true);
  });

  it('is unaccepted at the entry in process mode, with the chain', () => {
    const result = propagate(view({ 'a.js': ['index.js'] }, {}, false), [{ rel: 'a.js', gone: false }]);
    expect(result).toMatchObject({ type: 'unaccepted', chain: ['a.js', 'index.js'] });
  });

  it('drops an accepting parent\'s handler when that parent is outdated through another path', () => {
    const graph = { 'a.js': ['mid.js'], 'b.js': ['mid.js'], 'mid.js': ['index.js'] };
    const result = propagate(view(graph, { 'mid.js': accepts('a.js') }), [{ rel: 'a.js', gone: false }, { rel: 'b.js', gone: false }]);
    expect(result).toMatchObject({ type: 'accepted', acceptedBy: new Map(), entryReached: true });
  });

  it('does not stop at a self-accepting module that invalidated itself', () => {
    const result = propagate(view({ 'a.js': ['index.js'] }, { 'a.js': { selfAccepted: true, selfInvalidated: true }, 'index.js': accepts('a.js') }), [{ rel: 'a.js', gone: false }]);
    expect(result).toMatchObject({ type: 'accepted', acceptedBy: new Map([['index.js', ['a.js']]]), selfAccepted: [] });
  });

  it('lists a self-accepting outdated module to re-require', () => {
    const result = propagate(view({ 'a.js': ['index.js'] }, { 'a.js': { selfAccepted: true } }), [{ rel: 'a.js', gone: false }]);
    expect(result).toMatchObject({ type: 'accepted', outdated: ['a.js'], selfAccepted: ['a.js'], entryReached: false });
  });

  it('reports a declined dependency with the parent at the end of the chain', () => {
    const result = propagate(view({ 'a.js': ['b.js'], 'b.js': ['index.js'] }, { 'index.js': { declinedDeps: new Set(['b.js']) } }), [{ rel: 'a.js', gone: false }]);
    expect(result).toMatchObject({ type: 'declined', chain: ['a.js', 'b.js', 'index.js'] });
  });

  it('disposes a gone module nobody requires, and calls a changed orphan unaccepted', () => {
    expect(propagate(view({}, { 'old.js': {} }), [{ rel: 'old.js', gone: true }])).toMatchObject({ type: 'accepted', outdated: ['old.js'] });
    expect(propagate(view({}, { 'orphan.js': {} }), [{ rel: 'orphan.js', gone: false }])).toMatchObject({ type: 'unaccepted', chain: ['orphan.js'] });
  });
});
