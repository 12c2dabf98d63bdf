/**
 * Deterministic random ORCA datasets for differential tests: a catalog (granules, files) and an
 * S3 inventory listing for 1-3 archive buckets, where every key of a bucket has a chosen fate and
 * the dataset records which report rows that fate must produce.
 */

/** Every bucket a dataset may use: the test schema must have an inventory partition for each. */
export const BUCKETS = ['lp-daac-orca-primary', 'orca-archive-2', 'x9-deep-orca'] as const;

export type Property = 'etag' | 'size_in_bytes' | 'storage_class';
const PROPERTIES: readonly Property[] = ['etag', 'size_in_bytes', 'storage_class'];

/** What happens to one key in one bucket. */
export type Fate = 'match' | 'phantom' | 'orphan' | { differs: Property[] };

/** How a bucket's keys are chosen: mixed fates, or one of the degenerate listings. */
export type BucketMode = 'mixed' | 'catalog-empty' | 'listing-empty' | 'both-empty' | 'all-match';
const MODES: readonly BucketMode[] = ['mixed', 'mixed', 'mixed', 'mixed', 'catalog-empty', 'listing-empty', 'both-empty', 'all-match'];

export interface GranuleRow {
  collection_id: string;
  cumulus_granule_id: string;
  last_update: string;
}

export interface FileRow {
  bucket: string;
  collection_id: string;
  cumulus_granule_id: string;
  name: string;
  key_path: string;
  etag: string;
  size_in_bytes: number;
  storage_class_id: 1 | 2;
}

export interface InventoryRow {
  bucket: string;
  key_path: string;
  etag: string;
  last_update: string;
  size_in_bytes: number;
  storage_class: string;
}

/** The report rows a bucket's fates imply, reduced to what identifies them. */
export interface ExpectedReports {
  phantoms: string[];
  orphans: string[];
  /** `[key_path, discrepancy_type]`, sorted by key. */
  mismatches: [string, string][];
}

export interface Dataset {
  seed: number;
  /** The buckets in use, in the order their jobs are created (so job ids do not follow BUCKETS). */
  buckets: string[];
  modes: Record<string, BucketMode>;
  fates: Record<string, Map<string, Fate>>;
  granules: GranuleRow[];
  files: FileRow[];
  inventory: InventoryRow[];
  expected: Record<string, ExpectedReports>;
}

/** mulberry32: a small seeded PRNG with uniform output in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded choices: the same seed always makes the same ones. */
export class Random {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }
}

/** Keys that differ only by case, trailing space or slashes: an inexact comparison merges them. */
export const NEAR_DUPLICATE_KEYS = ['a/b', 'a/b ', 'A/b', 'a/b/', 'a//b'];

/** Keys with characters that break quoting, LIKE patterns, escaping or normalisation. */
export const TRICKY_KEYS = [
  'with space/granule file.h5',
  "it's/o'clock.h5",
  'say "hi"/"quoted".h5',
  '100%/50%_done.h5',
  '%',
  '_',
  'back\\slash\\key.h5',
  '\\',
  'Caf\u00e9/r\u00e9sum\u00e9.txt', // composed
  'Cafe\u0301/re\u0301sume\u0301.txt', // the same text, decomposed
  'emoji/\u{1F680}\u{1F30D}.nc',
  'trailing-space.h5 ',
  ' leading-space.h5',
  'MOD09GQ/A2025.h5',
  'mod09gq/a2025.h5',
  'tab\there.h5',
  "'; DROP TABLE files; --",
  `long/${'k'.repeat(900)}.h5`,
];

const SPECIAL_KEYS = [...NEAR_DUPLICATE_KEYS, ...TRICKY_KEYS];

const COLLECTIONS = ['MOD09GQ___061', 'HLSS30___2.0', "ASTER_L1T'003"];
const INVENTORY_CLASSES = ['GLACIER', 'DEEP_ARCHIVE', 'STANDARD', 'glacier'];
const CATALOG_CLASSES: Record<1 | 2, string> = { 1: 'GLACIER', 2: 'DEEP_ARCHIVE' };
const SIZES = [0, 1, 100, 4096, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, 5 * 2 ** 40];

function timestamp(random: Random, base: string): string {
  return new Date(Date.parse(base) + random.int(0, 30 * 86_400_000)).toISOString();
}

function etag(random: Random): string {
  const hex = Array.from({ length: 32 }, () => random.int(0, 15).toString(16)).join('');
  return random.chance(0.2) ? `"${hex.slice(0, 24)}-${random.int(2, 99)}"` : `"${hex}"`;
}

function otherEtag(random: Random, original: string): string {
  const variants = [original.toUpperCase(), original.slice(1, -1), `${original} `, etag(random)];
  const candidate = random.pick(variants);
  return candidate === original ? `"${original}"` : candidate;
}

function otherSize(random: Random, original: number): number {
  const candidate = random.chance(0.5) ? original + 1 : random.pick(SIZES);
  return candidate === original ? original + 7 : candidate;
}

function randomFate(random: Random, mode: BucketMode): Fate {
  if (mode === 'catalog-empty') return 'orphan';
  if (mode === 'listing-empty') return 'phantom';
  if (mode === 'all-match') return 'match';
  const roll = random.next();
  if (roll < 0.3) return 'match';
  if (roll < 0.45) return 'phantom';
  if (roll < 0.6) return 'orphan';
  const differs = PROPERTIES.filter(() => random.chance(0.5));
  return { differs: differs.length > 0 ? differs : [random.pick(PROPERTIES)] };
}

/** The dataset of `seed`: the same seed always yields the same rows. */
export function generateDataset(seed: number): Dataset {
  const random = new Random(seed);
  const buckets = random.shuffle(BUCKETS).slice(0, random.int(1, BUCKETS.length));
  const granules: GranuleRow[] = [];
  for (const collection of random.shuffle(COLLECTIONS).slice(0, random.int(1, COLLECTIONS.length))) {
    // The same cumulus_granule_id may recur in another collection: reports must keep both.
    for (let n = random.int(1, 3); n > 0; n--) {
      granules.push({ collection_id: collection, cumulus_granule_id: `G-${n}`, last_update: timestamp(random, '2025-06-01Z') });
    }
  }
  const plainKeys = Array.from({ length: random.int(4, 20) }, (_, n) => {
    const granule = random.pick(granules);
    return `${granule.collection_id}/${granule.cumulus_granule_id}/B${n}.tif`;
  });
  // One pool per dataset, so the same key often lands in several buckets with different fates.
  const pool = [...new Set([...NEAR_DUPLICATE_KEYS, ...random.shuffle(TRICKY_KEYS).slice(0, 8), ...plainKeys])];
  const uniform = random.chance(0.15) ? random.pick(MODES) : undefined;
  const dataset: Dataset = { seed, buckets, modes: {}, fates: {}, granules, files: [], inventory: [], expected: {} };

  for (const bucket of buckets) {
    const mode = uniform ?? random.pick(MODES);
    const count = mode === 'both-empty' ? 0 : random.int(1, Math.min(pool.length, 24));
    const keys = random.chance(0.3)
      ? [...NEAR_DUPLICATE_KEYS, ...random.shuffle(pool.filter((key) => !NEAR_DUPLICATE_KEYS.includes(key))).slice(0, count)]
      : random.shuffle(pool).slice(0, count);
    const fates = new Map<string, Fate>();
    const expected: ExpectedReports = { phantoms: [], orphans: [], mismatches: [] };
    dataset.modes[bucket] = mode;
    dataset.fates[bucket] = fates;
    dataset.expected[bucket] = expected;
    for (const key of mode === 'both-empty' ? [] : keys) {
      const fate = randomFate(random, mode);
      fates.set(key, fate);
      const granule = random.pick(granules);
      const storageClassId = random.pick([1, 2] as const);
      const file: FileRow = {
        bucket,
        collection_id: granule.collection_id,
        cumulus_granule_id: granule.cumulus_granule_id,
        name: key.split('/').pop() || key,
        key_path: key,
        etag: etag(random),
        size_in_bytes: random.pick(SIZES),
        storage_class_id: storageClassId,
      };
      const object: InventoryRow = {
        bucket,
        key_path: key,
        etag: file.etag,
        last_update: timestamp(random, '2026-01-01Z'),
        size_in_bytes: file.size_in_bytes,
        storage_class: CATALOG_CLASSES[storageClassId],
      };
      if (fate === 'phantom') {
        expected.phantoms.push(key);
        dataset.files.push(file);
      } else if (fate === 'orphan') {
        expected.orphans.push(key);
        dataset.inventory.push({ ...object, storage_class: random.pick(INVENTORY_CLASSES) });
      } else {
        if (fate !== 'match') {
          if (fate.differs.includes('etag')) object.etag = otherEtag(random, file.etag);
          if (fate.differs.includes('size_in_bytes')) object.size_in_bytes = otherSize(random, file.size_in_bytes);
          if (fate.differs.includes('storage_class')) {
            object.storage_class = random.pick(INVENTORY_CLASSES.filter((value) => value !== object.storage_class));
          }
          expected.mismatches.push([key, fate.differs.join(', ')]);
        }
        dataset.files.push(file);
        dataset.inventory.push(object);
      }
    }
    expected.phantoms.sort();
    expected.orphans.sort();
    expected.mismatches.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
  return dataset;
}

/** How often each case the reports distinguish occurs across `datasets`, per target bucket. */
export function corpusCoverage(datasets: readonly Dataset[]): Map<string, number> {
  const coverage = new Map<string, number>();
  const count = (name: string) => coverage.set(name, (coverage.get(name) ?? 0) + 1);
  for (const dataset of datasets) {
    const hasFiles = (bucket: string) => dataset.files.some((file) => file.bucket === bucket);
    const hasObjects = (bucket: string) => dataset.inventory.some((object) => object.bucket === bucket);
    if (dataset.files.length === 0) count('no files in any bucket');
    if (dataset.inventory.length === 0) count('no inventory in any bucket');
    for (const bucket of dataset.buckets) {
      const expected = dataset.expected[bucket]!;
      const fates = dataset.fates[bucket]!;
      if (!hasFiles(bucket)) count('empty catalog');
      if (!hasObjects(bucket)) count('empty listing');
      if (!hasFiles(bucket) && !hasObjects(bucket)) count('both empty');
      if (fates.size > 0 && expected.phantoms.length === fates.size) count('all phantom');
      if (fates.size > 0 && expected.orphans.length === fates.size) count('all orphan');
      const reported = [...expected.phantoms, ...expected.orphans, ...expected.mismatches.map(([key]) => key)];
      for (const key of reported) if (SPECIAL_KEYS.includes(key)) count(`reported key ${JSON.stringify(key)}`);
      expected.phantoms.forEach(() => count('phantom'));
      expected.orphans.forEach(() => count('orphan'));
      for (const [, type] of expected.mismatches) count(`mismatch: ${type}`);
      if ([...fates.values()].includes('match')) count('match');
      if (NEAR_DUPLICATE_KEYS.filter((key) => fates.has(key)).length === NEAR_DUPLICATE_KEYS.length) count('all near-duplicates in one bucket');
      for (const other of dataset.buckets.filter((name) => name !== bucket)) {
        for (const [key, fate] of fates) {
          const there = dataset.fates[other]!.get(key);
          if (there !== undefined && JSON.stringify(there) !== JSON.stringify(fate)) count('same key, other fate in another bucket');
        }
      }
    }
    for (const object of dataset.inventory) count(`inventory class ${object.storage_class}`);
  }
  return coverage;
}
