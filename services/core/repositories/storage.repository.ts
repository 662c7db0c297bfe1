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
}

/** Chunks are gathered into writes of about this size: one system call per MiB, not per network packet. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/** Objects up to this size are kept in memory while written, for parsing; larger ones are read back. */
const KEEP_BYTES = 64 * 1024 * 1024;

/** Raised when a part is larger than the limit; the writer has already discarded its bytes. */
export class ObjectTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`larger than the ${Math.round(limit / 1024 / 1024)} MB per-file limit`);
  }
}

/**
 * Streams bytes to a temporary file while hashing them; `finish()` fsyncs, so what the caller
 * renames into place is on disk. Chunks are written in batches of ~1 MiB, and an object of up to
 * KEEP_BYTES is also kept in memory (the parser needs it whole anyway; reading the file back cost
 * four more file operations per object). Chunks passed to `write` must not be changed afterwards:
 * HTTP bodies and DIMSE PDVs are fresh buffers.
 */
export class TempObjectWriter {
  private readonly hash = createHash('sha256');
  private size = 0;
  private tooLarge = false;
  private closed = false;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private kept: Buffer[] | undefined = [];

  /**
   * `handle`: the file being opened. Nothing waits for the open until the first batch is written,
   * so the first bytes keep arriving meanwhile; an error opening it (read-only, no space) is
   * reported by the write or finish that needs the file.
   */
  private constructor(readonly tempPath: string, private readonly handle: Promise<fsp.FileHandle>, private readonly maxBytes: number) {
    handle.catch(() => {}); // observed by flush/finish
  }

  /** Resolves when the file is open; rejects with the open's error. */
  async opened(): Promise<void> {
    await this.handle;
  }

  static open(tempDir: string, maxBytes: number): TempObjectWriter {
    const tempPath = path.join(tempDir, `${randomUUID()}.part`);
    return new TempObjectWriter(tempPath, fsp.open(tempPath, 'wx', PRIVATE_FILE), maxBytes);
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.tooLarge) return;
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      // Keep counting nothing and writing nothing; the rest of the part is drained by the caller.
      this.tooLarge = true;
      await this.writing.catch(() => {});
      await this.close();
      await fsp.rm(this.tempPath, { force: true });
      return;
    }
    this.hash.update(chunk);
    if (this.kept && this.size <= KEEP_BYTES) this.kept.push(chunk);
    else this.kept = undefined;
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes >= WRITE_BATCH_BYTES) {
      // One batch goes to disk while the next one arrives: wait only for the batch before it
      // (writes stay in order, at most two batches in memory), not for this one.
      await this.writing;
      this.writing = this.flush();
      this.writing.catch(() => {}); // reported by the next write() or finish()
    }
  }

  /** The batch being written, if any. */
  private writing: Promise<void> = Promise.resolve();

  private async flush(): Promise<void> {
    let buffers = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    while (buffers.length) {
      const handle = await this.handle;
      let { bytesWritten } = await handle.writev(buffers);
      // A short write: drop what went out and write the rest.
      while (buffers.length && bytesWritten >= buffers[0].length) bytesWritten -= buffers.shift()!.length;
      if (bytesWritten > 0) buffers = [buffers[0].subarray(bytesWritten), ...buffers.slice(1)];
    }
  }

  /**
   * All bytes written; their fdatasync is started, not awaited (TempObject.durable). fdatasync, not
   * fsync: it flushes the data and the metadata needed to read it back (size, blocks) and skips
   * only timestamps. The file is closed after the sync, off the caller's path (a close adds nothing
   * to durability once the sync has returned).
   */
  async finish(): Promise<TempObject> {
    if (this.tooLarge) throw new ObjectTooLargeError(this.maxBytes);
    await this.writing;
    await this.flush();
    const synced = (await this.handle).datasync();
    const durable = synced.finally(() => this.close().catch(() => {}));
    durable.catch(() => {}); // observed by commit(); a parse failure may never wait for it
    const bytes = this.kept ? Buffer.concat(this.kept, this.size) : undefined;
    this.kept = undefined;
    return { tempPath: this.tempPath, sha256: this.hash.digest('hex'), sizeBytes: this.size, bytes, durable };
  }

  async abort(): Promise<void> {
    this.batch = [];
    this.kept = undefined;
    await this.writing.catch(() => {});
    await this.close();
    await fsp.rm(this.tempPath, { force: true });
  }

  private async close() {
    if (this.closed) return;
    this.closed = true;
    const handle = await this.handle.catch(() => undefined); // never opened: nothing to close
    await handle?.close();
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

  /** A writer whose temp file exists (is open) when this resolves. */
  async openTemp(): Promise<TempObjectWriter> {
    const writer = TempObjectWriter.open(this.tempDir, this.maxPartBytes);
    await writer.opened();
    return writer;
  }

  /** A writer at once, its file opened meanwhile: the ingest's first bytes need not wait for the open (see TempObjectWriter). */
  startTemp(): TempObjectWriter {
    return TempObjectWriter.open(this.tempDir, this.maxPartBytes);
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
    let linked = false;
    try {
      await this.retryIfFolderGone(dir, temp, () => fsp.link(temp.tempPath, target));
      linked = true;
    } catch {
      // EEXIST: taken, see above. Any other refusal (a file system without hard links): the rename path, which reports real errors.
    }
    if (linked) {
      // The temp name goes at the same time (the object path keeps the inode; a crash before this
      // leaves the temp name to sweepTemp, harmless: it is a second name for the same bytes).
      temp.committed = true;
      await Promise.all([temp.durable, fsyncDir(dir), unlinkIfThere(temp.tempPath)]);
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

/** Makes the folder's entries (a rename into it) durable. The close is not waited for: it adds nothing once the sync returned. */
async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    void handle.close().catch(() => {});
  }
}

/** Removes a file name; already gone is fine (one system call, where rm() first stats the path). */
async function unlinkIfThere(file: string): Promise<void> {
  await fsp.unlink(file).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'ENOENT') throw error; });
}
