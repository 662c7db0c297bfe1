import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** Patient data at rest is for the service's user only (whatever the umask). */
const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

/** Free and total space of the filesystem that holds the data folder. */
export interface DiskUsage {
  path: string;
  freeBytes: number;
  totalBytes: number;
  usedFraction: number;
}

/** An object received whole: its file is at its final path, not yet durable, and no row points to it yet. */
export interface ReceivedObject {
  /** Where it is stored, relative to `objects/`: what the instance row records. */
  storageKey: string;
  sha256: string;
  sizeBytes: number;
  /** The bytes as written, when small enough to keep (saves reading the file back to parse it). */
  bytes?: Buffer;
  /**
   * Settles when the file's bytes are on disk (fdatasync), and it still has its name (an orphan
   * sweep may have removed a file that went unwritten too long). `finish()` starts it and returns
   * at once, so the caller can parse and look the instance up meanwhile; `makeDurable` waits for it.
   */
  durable: Promise<void>;
  /**
   * Gives the memory behind `bytes` back for reuse (after any write still reading it): call once
   * done with the object; `bytes` must not be read afterwards.
   */
  release: () => void;
}

/**
 * Received bytes go to the file in writes of about this size, while the rest still arrives. Each
 * write is a hand-off to libuv's pool, which costs the event loop and the pool CPU of its own
 * (waking a thread), whatever its size: a 0.5 MB image now goes in one write at its end instead of
 * three (docs/benchmarks/ingest-main.md measures it), and a 10 MB one in ten.
 */
const WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * A file being received is touched (its modification time set) with the first bytes that arrive
 * this long after its last change, even while no batch is due: the orphan sweep
 * (reconcile.service.ts) removes files without a row only after ORPHAN_GRACE_MS unchanged, so it
 * never takes one that an upload is still writing.
 */
export const TOUCH_EVERY_MS = 60_000;
/**
 * How long a file without a row must stay unchanged before the orphan sweep removes it: well over
 * TOUCH_EVERY_MS plus the longest pause a live sender may take between chunks (HTTP: the 30 s idle
 * timeout; DIMSE: the 2 min PDU timeout). A file swept anyway fails its upload (see finish()).
 */
export const ORPHAN_GRACE_MS = 10 * 60_000;
/** Objects up to this size are kept in memory while written, for parsing; larger ones are read back. */
const KEEP_BYTES = 64 * 1024 * 1024;
/**
 * Received bytes are copied into slabs of this size (most radiographs fit one: 2048×2500×2 bytes is
 * 10 MB), so an object is one block of memory that is written, hashed and parsed in place. Slabs
 * are reused (SlabPool), and the network's 64 KiB chunks are let go at once: before, every chunk
 * was kept until the object was complete and then copied whole for parsing, and the chunks of a
 * large image lived long enough to need V8's full (mark-compact) collections, about one per image.
 */
const SLAB_BYTES = 16 * 1024 * 1024;

/**
 * Idle slabs kept for the next objects: enough for a few uploads at once; beyond that, slabs are
 * made and dropped as needed. Only pages a slab ever held data in count in the process's memory.
 */
export class SlabPool {
  private readonly idle: Buffer[] = [];
  constructor(private readonly maxIdle = 4) {}

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES);
  }

  give(slab: Buffer): void {
    if (this.idle.length < this.maxIdle) this.idle.push(slab);
  }
}

/** Raised when a part is larger than the limit; the writer has already discarded its bytes. */
export class ObjectTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`larger than the ${Math.round(limit / 1024 / 1024)} MB per-file limit`);
  }
}

/**
 * Streams bytes to the object's own file at its final path while hashing them; `finish()` starts
 * making them durable. Nothing is renamed or linked: the name is new (a random id), and no row points
 * to the file until `makeDurable` has returned, so a half-written file is never served; a crash
 * leaves it to the orphan sweep. Bytes are copied into slabs (see SLAB_BYTES) and written from there
 * in batches (WRITE_BATCH_BYTES); an object of up to KEEP_BYTES stays in its slabs for parsing (one
 * slab: parsed in place; more: joined once).
 *
 * Which calls run where: everything that may wait for the disk (making the file, writes, syncs)
 * runs on libuv's thread pool; only closing it after its sync, and the check that it still has its
 * name, run inline.
 *
 * `release()` returns the slabs once the caller is done with `ReceivedObject.bytes`, which is a view
 * of them: nothing may read those bytes afterwards.
 */
export class ObjectWriter {
  private readonly hash = createHash('sha256');
  private size = 0;
  private tooLarge = false;
  private fd: number | undefined;
  private closed = false;
  /** This object's slabs, in order; bytes [0, fill) of the last one are used. */
  private slabs: Buffer[] = [];
  private fill = 0;
  /** How much of the last slab has been handed to a write. */
  private flushed = 0;
  /** Still under KEEP_BYTES: every slab is kept until `release()`; past it, each is returned once written. */
  private keeping = true;
  /** The write in flight, if any (writes stay in order: each waits for the one before). */
  private writing: Promise<void> = Promise.resolve();
  private settled: Promise<void> = Promise.resolve();
  /** When the file last changed on disk (made, written or touched): see TOUCH_EVERY_MS. */
  private touchedAt = Date.now();

  /** The file is made at the first byte (or by `opened()`): a part that never gets a byte costs no file. */
  constructor(readonly storageKey: string, readonly path: string, private readonly maxBytes: number, private readonly pool: SlabPool, private readonly makeDir: (again: boolean) => Promise<void>) {}

  /** Resolves when the file exists; rejects with the open's error (read-only folder, no space). */
  async opened(): Promise<void> {
    await this.file();
  }

  /**
   * The file, made on the pool (with its folder, the first time): making a file can read inode
   * tables from disk (ext4 without a journal checks every recently freed inode it passes), which
   * must not stall the event loop. Started at the first byte and awaited only by the first write,
   * so the bytes keep arriving meanwhile. 'wx': the name is new, never an existing file.
   */
  private opening: Promise<number> | undefined;
  private file(): Promise<number> {
    if (!this.opening) {
      const open = () => new Promise<number>((resolve, reject) => fs.open(this.path, 'wx', PRIVATE_FILE, (error, fd) => (error ? reject(error) : resolve(fd))));
      this.opening = this.makeDir(false).then(open).catch(async (error: NodeJS.ErrnoException) => {
        // The folder went away under us (removed by hand): make it again, once.
        if (error.code !== 'ENOENT') throw error;
        await this.makeDir(true);
        return open();
      }).then((fd) => {
        this.fd = fd;
        return fd;
      });
      this.opening.catch(() => {}); // reported by the write or finish that needs the file
    }
    return this.opening;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.tooLarge) return;
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      // Keep counting nothing and writing nothing; the rest of the part is drained by the caller.
      this.tooLarge = true;
      await this.abort();
      return;
    }
    this.hash.update(chunk);
    void this.file();
    for (let at = 0; at < chunk.length;) {
      if (!this.slabs.length || this.fill === SLAB_BYTES) await this.nextSlab();
      const copied = chunk.copy(this.slabs.at(-1)!, this.fill, at);
      this.fill += copied;
      at += copied;
    }
    if (this.fill - this.flushed >= WRITE_BATCH_BYTES) await this.flush();
    else if (Date.now() - this.touchedAt > TOUCH_EVERY_MS) this.touch();
  }

  /** A slow sender: no batch is due yet, but the orphan sweep must see the file as alive (see TOUCH_EVERY_MS). */
  private touch(): void {
    this.touchedAt = Date.now();
    void this.file().then((fd) => new Promise<void>((resolve) => fs.futimes(fd, new Date(), new Date(), () => resolve())), () => {});
  }

  /** Hands what the last slab holds beyond `flushed` to a write, once the write before it has returned. */
  private async flush(): Promise<void> {
    await this.writing;
    if (this.fill === this.flushed) return;
    const part = this.slabs.at(-1)!.subarray(this.flushed, this.fill);
    this.flushed = this.fill;
    this.touchedAt = Date.now();
    this.writing = this.file().then((fd) => writeAll(fd, part));
    this.writing.catch(() => {}); // reported by the next write() or finish()
  }

  private async nextSlab(): Promise<void> {
    if (this.slabs.length) {
      await this.flush();
      if (this.size > KEEP_BYTES) this.keeping = false;
      if (!this.keeping) {
        // Every earlier slab's writes have returned (flush waited for them): give them back now.
        for (const written of this.slabs.slice(0, -1)) this.pool.give(written);
        this.slabs = this.slabs.slice(-1);
      }
    }
    this.slabs.push(this.pool.take());
    this.fill = 0;
    this.flushed = 0;
  }

  /**
   * All bytes handed over: the last batch is written and its fdatasync started, neither awaited
   * here (ReceivedObject.durable), so the caller parses and looks the instance up meanwhile.
   * fdatasync, not fsync: it flushes the data and the metadata needed to read it back (size,
   * blocks) and skips only timestamps. Then the file must still have its name: a file left
   * unwritten past ORPHAN_GRACE_MS (a process stopped for minutes) may have been swept, and
   * recording it would record a missing file. The file is closed once that is known.
   */
  async finish(): Promise<ReceivedObject> {
    if (this.tooLarge) throw new ObjectTooLargeError(this.maxBytes);
    await this.flush();
    const fd = await this.file();
    const durable = this.writing
      .then(() => new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve()))))
      .then(() => {
        if (fs.fstatSync(fd).nlink === 0) throw new Error('the file was removed while it was being received; send it again');
      })
      .finally(() => this.close());
    durable.catch(() => {}); // observed by makeDurable(); a parse failure may never wait for it
    this.settled = durable.catch(() => {});
    let bytes: Buffer | undefined;
    if (this.size <= KEEP_BYTES) {
      const used = this.slabs.map((slab, i) => (i === this.slabs.length - 1 ? slab.subarray(0, this.fill) : slab));
      bytes = used.length === 1 ? used[0] : Buffer.concat(used, this.size);
    }
    return { storageKey: this.storageKey, sha256: this.hash.digest('hex'), sizeBytes: this.size, bytes, durable, release: () => this.release() };
  }

  /** Returns the slabs once no write reads them any more. `ReceivedObject.bytes` must not be used after this. */
  private release(): void {
    const slabs = this.slabs;
    this.slabs = [];
    void this.settled.then(() => { for (const slab of slabs) this.pool.give(slab); });
  }

  /** Drops the bytes and the file (once a write in flight has returned); never throws. */
  async abort(): Promise<void> {
    await this.opening?.catch(() => {});
    await this.writing.catch(() => {});
    this.close();
    await fsp.unlink(this.path).catch(() => {}); // never made, or gone
    for (const slab of this.slabs) this.pool.give(slab);
    this.slabs = [];
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== undefined) try { fs.closeSync(this.fd); } catch { /* closing adds nothing to durability */ }
  }
}

/** Writes all of `data` at the file's position, on libuv's pool (a short write is continued). */
async function writeAll(fd: number, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length;) {
    at += await new Promise<number>((resolve, reject) => fs.write(fd, data, at, data.length - at, null, (error, bytes) => (error ? reject(error) : resolve(bytes))));
  }
}

/**
 * Original DICOM files, stored byte for byte, each under a new random name in its site:
 * `objects/<site>/<id[0:2]>/<id>.dcm` (objects stored before 2026-12 are named by their SHA-256;
 * rows keep whichever key they got). A file is written at its final path and made durable, its
 * folder too, before its row is committed; a file without a row (a crash mid-upload) is never served
 * and is swept (ORPHAN_GRACE_MS).
 */
export class StorageRepository {
  /** Where versions before 2026-12 received uploads before linking them into place: only swept now. */
  readonly tempDir: string;
  readonly objectsDir: string;
  /** Files we make from the originals (heat maps, thumbnails); can always be made again. */
  readonly derivedDir: string;
  /** Memory for objects being received (see SLAB_BYTES). */
  private readonly slabs = new SlabPool();

  constructor(readonly dataDir: string, private readonly maxPartBytes: number) {
    this.tempDir = path.join(dataDir, 'tmp');
    this.objectsDir = path.join(dataDir, 'objects');
    this.derivedDir = path.join(dataDir, 'derived');
  }

  /** Creates the folders, private to this user (0700), and tightens them if an older version made them 0755. */
  async init(): Promise<void> {
    for (const dir of [this.dataDir, this.objectsDir, this.derivedDir]) {
      await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
      await fsp.chmod(dir, PRIVATE_DIR);
    }
  }

  /** Writes a derived file atomically (temp + rename), e.g. `<site>/<instanceId>/heatmap.png`. */
  async writeDerived(key: string, data: Buffer): Promise<void> {
    const target = this.inside(this.derivedDir, key);
    await fsp.mkdir(path.dirname(target), { recursive: true, mode: PRIVATE_DIR });
    const temp = `${target}.${randomUUID()}.tmp`;
    await fsp.writeFile(temp, data, { mode: PRIVATE_FILE });
    await fsp.rename(temp, target);
  }

  readDerived(key: string): Promise<Buffer> {
    return fsp.readFile(this.inside(this.derivedDir, key));
  }

  private inside(dir: string, key: string): string {
    const resolved = path.resolve(dir, key);
    if (!resolved.startsWith(dir + path.sep)) throw new Error('storage key escapes its folder');
    return resolved;
  }

  /** A writer whose file exists when this resolves. */
  async openObject(siteId: string): Promise<ObjectWriter> {
    const writer = this.startObject(siteId);
    await writer.opened();
    return writer;
  }

  /** A writer for a new object of the site, whose file is made at its first byte (see ObjectWriter). */
  startObject(siteId: string): ObjectWriter {
    const id = randomUUID();
    const storageKey = `${siteId}/${id.slice(0, 2)}/${id}.dcm`;
    const file = this.pathOf(storageKey);
    return new ObjectWriter(storageKey, file, this.maxPartBytes, this.slabs, (again) => this.makeDir(path.dirname(file), again));
  }

  /** A received object's bytes (for parsing before it is recorded): kept from the write, or read back. */
  readReceived(object: ReceivedObject): Promise<Buffer> {
    return object.bytes ? Promise.resolve(object.bytes) : this.readFile(object.storageKey);
  }

  async diskUsage(): Promise<DiskUsage> {
    const s = await fsp.statfs(this.dataDir);
    const totalBytes = s.blocks * s.bsize;
    const freeBytes = s.bavail * s.bsize;
    return { path: this.dataDir, freeBytes, totalBytes, usedFraction: totalBytes ? 1 - freeBytes / totalBytes : 0 };
  }

  pathOf(storageKey: string): string {
    return this.inside(this.objectsDir, storageKey);
  }

  /** Shard folders known to exist: each made once, not checked before every new file. */
  private readonly madeDirs = new Set<string>();

  /** Makes a shard folder (on the pool) the first time, or `again` when it went away under us (removed by hand). */
  private async makeDir(dir: string, again = false): Promise<void> {
    if (this.madeDirs.has(dir) && !again) return;
    try {
      await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    } catch (error) {
      // A recursive mkdir on a read-only file system can say ENOENT; the data folder's own answer says why (EROFS).
      await fsp.access(this.objectsDir, fs.constants.W_OK);
      throw error;
    }
    this.madeDirs.add(dir);
  }

  /**
   * Makes a received object durable: its bytes (fdatasync, started by `finish()`, already in flight)
   * and its folder entry (fsync of the folder), the two waits overlapped. Only when this has returned
   * may the caller commit the row that points to it. On failure the file is left for the caller to
   * `remove`.
   */
  async makeDurable(object: ReceivedObject): Promise<string> {
    await Promise.all([object.durable, fsyncDir(path.dirname(this.pathOf(object.storageKey)))]);
    return object.storageKey;
  }

  readFile(storageKey: string): Promise<Buffer> {
    return fsp.readFile(this.pathOf(storageKey));
  }

  createReadStream(storageKey: string): fs.ReadStream {
    return fs.createReadStream(this.pathOf(storageKey));
  }

  async remove(storageKey: string): Promise<void> {
    await fsp.rm(this.pathOf(storageKey), { force: true });
  }


  /** Every stored object key with its modification time. */
  async *listObjects(): AsyncGenerator<{ key: string; mtimeMs: number }> {
    for (const site of await readdirSafe(this.objectsDir)) {
      for (const shard of await readdirSafe(path.join(this.objectsDir, site))) {
        for (const file of await readdirSafe(path.join(this.objectsDir, site, shard))) {
          const key = `${site}/${shard}/${file}`;
          const stat = await fsp.stat(this.pathOf(key)).catch(() => undefined);
          if (stat?.isFile()) yield { key, mtimeMs: stat.mtimeMs };
        }
      }
    }
  }

  /** Removes files older than `olderThanMs` from tmp/, where versions before 2026-12 left a crash's partial uploads. */
  async sweepTemp(olderThanMs: number): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const file of await readdirSafe(this.tempDir)) {
      const full = path.join(this.tempDir, file);
      const stat = await fsp.stat(full).catch(() => undefined);
      if (stat && stat.mtimeMs < cutoff) {
        await fsp.rm(full, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

async function readdirSafe(dir: string): Promise<string[]> {
  return fsp.readdir(dir).catch(() => []);
}

/**
 * Makes the folder's entries (a link or rename into it) durable. The folder was just written to, so
 * opening and closing it touch only cached entries and run inline; the fsync waits for the disk, on
 * libuv's pool.
 */
function fsyncDir(dir: string): Promise<void> {
  const fd = fs.openSync(dir, 'r');
  return new Promise((resolve, reject) => fs.fsync(fd, (error) => {
    try { fs.closeSync(fd); } catch { /* closing adds nothing once the sync returned */ }
    if (error) reject(error);
    else resolve();
  }));
}
