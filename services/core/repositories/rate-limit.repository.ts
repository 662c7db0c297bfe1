import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script and its SHA-1: sent by hash (EVALSHA), its text only when Redis does not know it yet (see `runScript`). */
interface LuaScript { text: string; sha: string }

function luaScript(text: string): LuaScript {
  return { text, sha: createHash('sha1').update(text).digest('hex') };
}

/**
 * One back-off tier: `free` evaluated sign-ins are allowed; every one after that makes the next
 * attempt wait base × 2^(n - free - 1), up to `maxMs`. The count is forgotten `windowMs` after the
 * last attempt.
 */
interface Tier { free: number; baseMs: number; maxMs: number; windowMs: number }

/** Per username + client address: a guessing burst is slowed at once. */
const PAIR: Tier = { free: 5, baseMs: 1_000, maxMs: 15 * 60_000, windowMs: 15 * 60_000 };
/** Per client address (all usernames): spraying from one address. Skipped for a user who signed in from there before. */
const ADDRESS: Tier = { free: 10, baseMs: 1_000, maxMs: 5 * 60_000, windowMs: 15 * 60_000 };
/** Per username (all addresses): guessing from many addresses. Skipped from an address the user signed in from before. */
const USER: Tier = { free: 20, baseMs: 1_000, maxMs: 60_000, windowMs: 15 * 60_000 };
/** How long a successful (user, address) pair is remembered as known. */
const KNOWN_MS = 30 * 24 * 3600_000;

/**
 * Checks every tier and, only when none is waiting, counts this attempt in all of them — in one
 * Lua script, so concurrent attempts are counted one by one before any password is checked. The
 * attempt is counted as a failure up front; a success clears its pair afterwards.
 * KEYS: pair, address, user, known.  ARGV: now, then free/base/max/window for each tier.
 * Returns 0 when allowed, else the milliseconds to wait.
 */
const RESERVE = luaScript(`
local now = tonumber(ARGV[1])
local known = redis.call('EXISTS', KEYS[4]) == 1
local tiers = {}
for i = 1, 3 do
  if not (known and i > 1) then
    local o = 1 + (i - 1) * 4
    tiers[#tiers + 1] = { key = KEYS[i], free = tonumber(ARGV[o + 1]), base = tonumber(ARGV[o + 2]), max = tonumber(ARGV[o + 3]), window = tonumber(ARGV[o + 4]) }
  end
end
local wait = 0
for _, t in ipairs(tiers) do
  local nextAt = tonumber(redis.call('HGET', t.key, 'next') or '0')
  if nextAt > now and nextAt - now > wait then wait = nextAt - now end
end
if wait > 0 then return wait end
for _, t in ipairs(tiers) do
  local n = redis.call('HINCRBY', t.key, 'n', 1)
  local delay = 0
  if n > t.free then delay = math.min(t.base * 2 ^ (n - t.free - 1), t.max) end
  redis.call('HSET', t.key, 'next', now + delay)
  redis.call('PEXPIRE', t.key, math.max(t.window, delay))
end
return 0
`);

/**
 * KEYS: the key's counter for this minute. ARGV: how many uploads to count, the counter's lifetime
 * (ms), set when the minute's first count makes it. Returns the count.
 */
const COUNT_UPLOADS = luaScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
`);

/**
 * Uploads an API process counts in Redis at once for one key, then lets through without asking:
 * one Redis call per this many uploads instead of one each (every STOW request paid for it). A
 * process may thus count up to LEASE - 1 uploads of a minute that it then does not receive, so a
 * key can be refused at most that many uploads per process per minute early. Limits under
 * 64 × LEASE a minute are counted one upload at a time, exactly as before.
 */
const UPLOAD_LEASE = 8;

/** Sessions that ended: all of a user's, or one (by its hash). */
export interface SessionsEnded { userId?: number; sessionHash?: string }

/** KEYS: pair, address, user, known. ARGV: how long the pair stays known (ms). */
const SUCCEEDED = luaScript(`
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 and tonumber(redis.call('HGET', KEYS[i], 'n') or '0') > 0 then redis.call('HINCRBY', KEYS[i], 'n', -1) end
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[1])
`);

/**
 * Counters in Redis that protect the service from one client: sign-in back-off and per-key upload
 * rates. Shared by every API process; each key expires, so memory stays bounded whatever the traffic.
 */
export class RateLimitRepository {
  private subscriber: Redis | undefined;
  /** Uploads this process has counted in Redis and not yet let through, per API key, for one minute. */
  private readonly leases = new Map<string, { minute: number; left: number }>();
  private subscribed: Promise<unknown> = Promise.resolve();
  private readonly endedListeners = new Set<(ended: SessionsEnded) => void>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Opens the subscriber connection for sessions-ended messages, on first use only. */
    private readonly connect?: () => Redis,
  ) {}

  private get sessionsChannel() {
    return `${this.prefix}:sessions-ended`;
  }

  private key(...parts: string[]) {
    return `${this.prefix}:limit:${parts.map((p) => encodeURIComponent(p)).join(':')}`;
  }

  /** 0 when this sign-in attempt may be evaluated (and it has been counted), else the milliseconds to wait. */
  async reserveSignIn(username: string, address: string, now = Date.now()): Promise<number> {
    const keys = [this.key('signin', 'pair', username, address), this.key('signin', 'addr', address), this.key('signin', 'user', username), this.key('signin', 'known', username, address)];
    const args = [now, ...[PAIR, ADDRESS, USER].flatMap((t) => [t.free, t.baseMs, t.maxMs, t.windowMs])];
    return Number(await this.runScript(RESERVE, keys, args));
  }

  /**
   * The right password: the attempt counted up front as a failure is taken back (the pair starts
   * afresh), and the address is remembered as known for this user.
   */
  async signInSucceeded(username: string, address: string): Promise<void> {
    const keys = [this.key('signin', 'pair', username, address), this.key('signin', 'addr', address), this.key('signin', 'user', username), this.key('signin', 'known', username, address)];
    await this.runScript(SUCCEEDED, keys, [KNOWN_MS]);
  }

  /**
   * Counts one upload for an API key in the current minute; 0 when within `perMinute`, else
   * seconds until the next minute. Counted in Redis a few at a time (see UPLOAD_LEASE).
   */
  async countUpload(keyId: string, perMinute: number, now = Date.now()): Promise<number> {
    if (perMinute <= 0) return 0;
    const minute = Math.floor(now / 60_000);
    const lease = this.leases.get(keyId);
    if (lease?.minute === minute && lease.left > 0) {
      lease.left--;
      return 0;
    }
    const size = Math.max(1, Math.min(UPLOAD_LEASE, Math.floor(perMinute / 64)));
    const counter = this.key('upload', keyId, String(minute));
    const count = Number(await this.runScript(COUNT_UPLOADS, [counter], [size, 120_000]));
    // Of the `size` just counted, those still within the limit are ours to let through (this one first).
    const granted = Math.max(0, Math.min(size, perMinute - (count - size)));
    if (granted === 0) return Math.ceil(((minute + 1) * 60_000 - now) / 1000);
    const current = this.leases.get(keyId); // a concurrent call may have leased meanwhile
    this.leases.set(keyId, { minute, left: (current?.minute === minute ? current.left : 0) + granted - 1 });
    return 0;
  }

  /** Runs a script by its hash; the first time after Redis started (NOSCRIPT), by its text, which Redis then keeps. */
  private runScript(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.redis.evalsha(script.sha, keys.length, ...keys, ...args).catch((error: Error) => {
      if (!/NOSCRIPT/.test(error.message)) throw error;
      return this.redis.eval(script.text, keys.length, ...keys, ...args);
    });
  }

  /** Tells every API process that sessions ended (sign-out, user disabled), so their event streams close. */
  async publishSessionsEnded(ended: SessionsEnded): Promise<void> {
    await this.redis.publish(this.sessionsChannel, JSON.stringify(ended)).catch(() => undefined);
  }

  /** Calls `listener` for every sessions-ended message; resolves once subscribed, with the function that stops it. */
  async onSessionsEnded(listener: (ended: SessionsEnded) => void): Promise<() => void> {
    this.endedListeners.add(listener);
    if (!this.subscriber && this.connect) {
      const subscriber = this.connect();
      this.subscriber = subscriber;
      subscriber.on('error', () => {});
      this.subscribed = subscriber.subscribe(this.sessionsChannel).catch(() => undefined);
      subscriber.on('message', (_channel: string, message: string) => {
        let ended: SessionsEnded;
        try { ended = JSON.parse(message); } catch { return; }
        for (const l of this.endedListeners) l(ended);
      });
    }
    await this.subscribed;
    return () => { this.endedListeners.delete(listener); };
  }

  close(): void {
    this.endedListeners.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}
