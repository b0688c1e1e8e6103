// The demo's floors (test/demo-floors.ts): derived from the shipped cards, they reject a run that
// did nothing and accept one that worked. No model runs here; test/demo.test.ts applies them.
import { describe, expect, it } from 'vitest';
import { FASHION_28 } from '../lib/tasks/common.js';
import { cardFigures, checkDemoNotes, classFloor, counts } from './demo-floors.js';

const MODELS = ['fashion-robust', 'fashion-standard'];
const CLASS_TITLES = [
  'Generation from uniform seeds', 'Generation from univariate normal seeds', 'Generation from multivariate normal seeds',
  'Inpainting', 'Super-resolution (4x)', 'Image-to-image translation', 'Sketch to image',
];
const note = (k: number, n = 10) => `${k}/${n} classified as the target by the model itself`;
const panels = (hit: number, n = 10) => [
  ...CLASS_TITLES.map((title) => ({ title, notes: Object.fromEntries(MODELS.map((m) => [m, note(hit, n)])) })),
  { title: 'Representation inversion', notes: Object.fromEntries(MODELS.map((m) => [m, `from noise ${note(hit, n)}; from another image ${hit}/${n}; relative representation distance 0.90 -> 0.10`])) },
  { title: 'Feature visualization', notes: Object.fromEntries(MODELS.map((m) => [m, 'median unit value 1.50x its largest on real images (from 0.20x)'])) },
  { title: 'Paint with features', notes: Object.fromEntries(MODELS.map((m) => [m, 'unit 3: median 0.10 -> 2.40 (its largest on real images: 3.00)'])) },
];

describe('demo floors', () => {
  it("come from each card's figures and lie well above chance (1 in 10)", () => {
    for (const m of MODELS) {
      const card = cardFigures(m);
      expect(card.clean).toBeGreaterThan(0.5);
      for (const t of CLASS_TITLES) {
        const f = classFloor(m, t, 10);
        expect(f, `${m} ${t}`).toBeGreaterThanOrEqual(5);
        expect(f, `${m} ${t}`).toBeLessThanOrEqual(10);
      }
      // Restoration: the card's clean accuracy less 0.2, of ten.
      expect(classFloor(m, 'Inpainting', 10)).toBe(Math.floor(10 * (card.clean - 0.2)));
      // A model that an attack within the task's radius fools entirely must reach the class on 9 of 10.
      const within = card.attacked.filter((a) => a.eps <= FASHION_28.generate.eps);
      if (within.some((a) => a.accuracy === 0)) expect(classFloor(m, 'Generation from uniform seeds', 10)).toBe(9);
    }
    expect(() => classFloor('fashion-robust', 'No such panel', 10)).toThrow(/no floor/);
  });

  it('reject "0/10" and chance, accept a run that worked', () => {
    expect(checkDemoNotes(panels(10), MODELS)).toEqual([]);
    const none = checkDemoNotes(panels(0), MODELS);
    expect(none.length).toBe(2 * (CLASS_TITLES.length + 2)); // every class panel, inversion counted twice
    expect(none[0]).toMatch(/Generation from uniform seeds, fashion-robust: 0\/10 reached the class, fewer than \d/);
    expect(checkDemoNotes(panels(1), MODELS).length).toBeGreaterThan(0);
    // A unit that was not raised, an unreadable note.
    const flat = panels(10).map((p) => (p.title === 'Paint with features' ? { ...p, notes: { ...p.notes, 'fashion-robust': 'unit 3: median 2.40 -> 2.40 (its largest on real images: 3.00)' } } : p));
    expect(checkDemoNotes(flat, MODELS)).toEqual([expect.stringMatching(/Paint with features, fashion-robust: the unit was not raised/)]);
    const apart = panels(10).map((p) => (p.title === 'Representation inversion' ? { ...p, notes: { ...p.notes, 'fashion-robust': p.notes['fashion-robust']!.replace('0.90 -> 0.10', '0.90 -> 0.95') } } : p));
    expect(checkDemoNotes(apart, MODELS)).toEqual([expect.stringMatching(/Representation inversion, fashion-robust: the representation did not come closer/)]);
    const blank = panels(10).map((p) => (p.title === 'Inpainting' ? { ...p, notes: { ...p.notes, 'fashion-standard': '' } } : p));
    expect(checkDemoNotes(blank, MODELS)).toEqual([expect.stringMatching(/Inpainting, fashion-standard: no count/)]);
  });

  it('read every count of a note', () => {
    expect(counts(note(7))).toEqual([[7, 10]]);
    expect(counts(`from noise ${note(8)}; from another image 6/10; relative representation distance 0.91 -> 0.12`)).toEqual([[8, 10], [6, 10]]);
  });
});
