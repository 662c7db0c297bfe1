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

export interface TempObject {
  tempPath: string;
  sha256: string;
  sizeBytes: number;
  /** The bytes as written, when small enough to keep (saves reading the file back to parse it). */
  bytes?: Buffer;
  /** Renamed into place by `commit`: nothing left to discard. */
  committed?: boolean;
  /**
   * Settles when the temp file's bytes are on disk (fdatasync). `finish()` starts it and returns at
   * once, so the caller can parse and look the instance up meanwhile; `commit` waits for it before
   * the rename, so only durable bytes are ever renamed into place.
   */
  durable?: Promise<void>;
  /**
   * Settles when the last write has returned (the bytes are in the file, maybe not yet on disk).
   * `commit` links only after it: a link while a write still holds the file's lock spins on it.
   */
  written?: Promise<void>;
  /**
   * Gives the memory behind `bytes` back for reuse (after any write still reading it): call once
   * done with the object; `bytes` must not be read afterwards.
   */
  release?: () => void;
}

/**
 * Received bytes go to the file in writes of about this size, while the rest still arrives: one
 * system call per 256 KiB, not per network packet, and a 0.5 MB image is mostly on its way to disk
 * by its last byte (1 MiB batches wrote it only then; 128 KiB cost more hand-offs than they saved).
 */
const WRITE_BATCH_BYTES = 256 * 1024;
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
 * Streams bytes to a temporary file while hashing them; `finish()` starts making them durable, so
 * what the caller links into place is on disk. Bytes are copied into slabs (see SLAB_BYTES) and
 * written from there in batches of ~256 KiB; an object of up to KEEP_BYTES stays in its slabs for
 * parsing (one slab: parsed in place; more: joined once).
 *
 * Which calls run where: everything that may wait for the disk (making the file, writes, syncs)
 * runs on libuv's thread pool; only closing it after its sync runs inline.
 *
 * `release()` returns the slabs once the caller is done with `TempObject.bytes`, which is a view of
 * them: nothing may read those bytes afterwards.
 */
export class TempObjectWriter {
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

  /** The file is made at the first byte (or by `opened()`): a part that never gets a byte costs no file. */
  private constructor(readonly tempPath: string, private readonly maxBytes: number, private readonly pool: SlabPool) {}

  /** Resolves when the file exists; rejects with the open's error (read-only folder, no space). */
  async opened(): Promise<void> {
    await this.file();
  }

  static open(tempDir: string, maxBytes: number, pool: SlabPool): TempObjectWriter {
    return new TempObjectWriter(path.join(tempDir, `${randomUUID()}.part`), maxBytes, pool);
  }

  /**
   * The file, opened on the pool: making a file can read inode tables from disk (ext4 without a
   * journal checks every recently freed inode it passes), which must not stall the event loop.
   * Started at the first byte and awaited only by the first write, so the bytes keep arriving meanwhile.
   */
  private opening: Promise<number> | undefined;
  private file(): Promise<number> {
    if (!this.opening) {
      this.opening = new Promise<number>((resolve, reject) => fs.open(this.tempPath, 'wx', PRIVATE_FILE, (error, fd) => {
        if (error) return reject(error);
        this.fd = fd;
        resolve(fd);
      }));
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
  }

  /** Hands what the last slab holds beyond `flushed` to a write, once the write before it has returned. */
  private async flush(): Promise<void> {
    await this.writing;
    if (this.fill === this.flushed) return;
    const part = this.slabs.at(-1)!.subarray(this.flushed, this.fill);
    this.flushed = this.fill;
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
   * here (TempObject.written, .durable), so the caller parses and looks the instance up meanwhile.
   * fdatasync, not fsync: it flushes the data and the metadata needed to read it back (size,
   * blocks) and skips only timestamps. The file is closed once the sync has returned.
   */
  async finish(): Promise<TempObject> {
    if (this.tooLarge) throw new ObjectTooLargeError(this.maxBytes);
    await this.flush();
    const fd = await this.file();
    const written = this.writing;
    const durable = written
      .then(() => new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve()))))
      .finally(() => this.close());
    // Observed by commit(); a parse failure may never wait for them.
    written.catch(() => {});
    durable.catch(() => {});
    this.settled = durable.catch(() => {});
    let bytes: Buffer | undefined;
    if (this.size <= KEEP_BYTES) {
      const used = this.slabs.map((slab, i) => (i === this.slabs.length - 1 ? slab.subarray(0, this.fill) : slab));
      bytes = used.length === 1 ? used[0] : Buffer.concat(used, this.size);
    }
    return { tempPath: this.tempPath, sha256: this.hash.digest('hex'), sizeBytes: this.size, bytes, written, durable, release: () => this.release() };
  }

  /** Returns the slabs once no write reads them any more. `TempObject.bytes` must not be used after this. */
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
    await fsp.unlink(this.tempPath).catch(() => {}); // never made, or gone
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
 * Original DICOM files, stored byte for byte, content-addressed under the site:
 * `objects/<site>/<sha[0:2]>/<sha>.dcm`. A temp file only becomes an object by an atomic rename
 * after fsync, and the directory is fsynced too, so a stored object survives a crash.
 */
export class StorageRepository {
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
    for (const dir of [this.dataDir, this.tempDir, this.objectsDir, this.derivedDir]) {
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

  /** A writer whose temp file exists when this resolves. */
  async openTemp(): Promise<TempObjectWriter> {
    const writer = TempObjectWriter.open(this.tempDir, this.maxPartBytes, this.slabs);
    await writer.opened();
    return writer;
  }

  /** A writer whose file is made at its first byte (see TempObjectWriter). */
  startTemp(): TempObjectWriter {
    return TempObjectWriter.open(this.tempDir, this.maxPartBytes, this.slabs);
  }

  /** A finished temp file's bytes (for parsing before it is committed): kept from the write, or read back. */
  readTemp(temp: TempObject): Promise<Buffer> {
    return temp.bytes ? Promise.resolve(temp.bytes) : fsp.readFile(temp.tempPath);
  }

  async diskUsage(): Promise<DiskUsage> {
    const s = await fsp.statfs(this.dataDir);
    const totalBytes = s.blocks * s.bsize;
    const freeBytes = s.bavail * s.bsize;
    return { path: this.dataDir, freeBytes, totalBytes, usedFraction: totalBytes ? 1 - freeBytes / totalBytes : 0 };
  }

  keyFor(siteId: string, sha256: string): string {
    return `${siteId}/${sha256.slice(0, 2)}/${sha256}.dcm`;
  }

  pathOf(storageKey: string): string {
    return this.inside(this.objectsDir, storageKey);
  }

  /** Shard folders known to exist: each made once, not checked before every rename. */
  private readonly madeDirs = new Set<string>();

  /**
   * Puts a finished temp file in place under its content address and makes it durable: its bytes
   * and its folder entry are on disk when this returns, so the caller may then commit the row.
   *
   * New path (the usual case): hard-link the temp file to the object path — link(2) never replaces
   * an existing file — then fdatasync the file (temp.durable, already in flight) and fsync the folder
   * at the same time: two waits overlapped instead of one after the other. A crash before both
   * returned leaves at most a file with no row (never answered as stored; the orphan sweep removes
   * it, and a resend rewrites it, see below).
   *
   * Path already taken (EEXIST): whatever is there is either a stored object with these very bytes
   * or a leftover of a crash that may be truncated, so it is never trusted: we wait for our own
   * bytes to be on disk and only then rename them over it (atomic), then fsync the folder. A
   * durable object is thus only ever replaced by a durable copy of the same bytes.
   */
  async commit(temp: TempObject, siteId: string): Promise<string> {
    const key = this.keyFor(siteId, temp.sha256);
    const target = this.pathOf(key);
    const dir = path.dirname(target);
    if (!this.madeDirs.has(dir)) {
      await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
      this.madeDirs.add(dir);
    }
    // Linked once written (a link while a write still holds the file's lock spins on it), not yet synced.
    await temp.written;
    let linked = false;
    try {
      await this.retryIfFolderGone(dir, temp, () => fsp.link(temp.tempPath, target));
      linked = true;
    } catch {
      // EEXIST: taken, see above. Any other refusal (a file system without hard links): the rename path, which reports real errors.
    }
    if (linked) {
      temp.committed = true;
      // The inode just linked (cached: no disk read), to tell our file from one renamed over it later.
      const { ino } = fs.statSync(target);
      // The temp name goes meanwhile, not waited for: a crash or error leaves it to sweepTemp,
      // harmless (a second name for the same bytes).
      fs.unlink(temp.tempPath, () => {});
      try {
        await Promise.all([temp.durable, fsyncDir(dir)]);
      } catch (error) {
        // Our bytes never reached the disk (no space, I/O error): take our name back, unless an
        // identical upload has meanwhile renamed its durable copy over it (another inode).
        if (fs.statSync(target, { throwIfNoEntry: false })?.ino === ino) await fsp.rm(target, { force: true });
        throw error;
      }
      return key;
    }
    await temp.durable;
    await this.retryIfFolderGone(dir, temp, () => fsp.rename(temp.tempPath, target));
    temp.committed = true;
    await fsyncDir(dir);
    return key;
  }

  /** Runs `op` (a link or rename into `dir`); if the folder went away under us (removed by hand), makes it again and retries once. */
  private async retryIfFolderGone(dir: string, temp: TempObject, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync(temp.tempPath)) throw error;
      this.madeDirs.delete(dir);
      await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
      this.madeDirs.add(dir);
      await op();
    }
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

  async discardTemp(temp: { tempPath: string; committed?: boolean }): Promise<void> {
    if (temp.committed) return;
    await fsp.rm(temp.tempPath, { force: true });
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

  /** Removes temp files older than `olderThanMs` (left by a crash mid-upload). */
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
