/**
 * A shared output directory's manifest merges (--shared only).
 * Merges output directories' manifests from their entry files, at most once per `everyMs` per
 * directory: a merge rewrites the whole manifest, so merging after every batch would cost
 * O(outputs) per batch. The last request is always honoured (a timer), and close() flushes.
 */
export class ManifestMerger {
  #last = new Map<string, number>();
  #timers = new Map<string, NodeJS.Timeout>();
  #chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly merge: (dir: string) => Promise<void>,
    private readonly everyMs: number,
    private readonly log: (line: string) => void,
  ) {}

  request(dir: string): void {
    if (this.#timers.has(dir)) return;
    const wait = Math.max(0, (this.#last.get(dir) ?? 0) + this.everyMs - Date.now());
    this.#timers.set(dir, setTimeout(() => this.#run(dir), wait));
  }

  #run(dir: string): Promise<void> {
    this.#timers.delete(dir);
    this.#last.set(dir, Date.now());
    this.#chain = this.#chain.then(() => this.merge(dir)).catch((e: unknown) => this.log(`manifest merge in ${dir} failed (the next one repairs it): ${(e as Error).message}`));
    return this.#chain;
  }

  async flush(): Promise<void> {
    for (const [dir, t] of [...this.#timers]) {
      clearTimeout(t);
      void this.#run(dir);
    }
    await this.#chain;
  }
}
