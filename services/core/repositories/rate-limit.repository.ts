import type { Redis } from 'ioredis';

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
const RESERVE = `
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
`;

/** KEYS: the key's counter for this minute. ARGV: its lifetime (ms), set when the minute's first upload makes it. Returns the count. */
const COUNT_UPLOAD = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

/** Sessions that ended: all of a user's, or one (by its hash). */
export interface SessionsEnded { userId?: number; sessionHash?: string }

/** KEYS: pair, address, user, known. ARGV: how long the pair stays known (ms). */
const SUCCEEDED = `
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 and tonumber(redis.call('HGET', KEYS[i], 'n') or '0') > 0 then redis.call('HINCRBY', KEYS[i], 'n', -1) end
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[1])
`;

/**
 * Counters in Redis that protect the service from one client: sign-in back-off and per-key upload
 * rates. Shared by every API process; each key expires, so memory stays bounded whatever the traffic.
 */
export class RateLimitRepository {
  private subscriber: Redis | undefined;
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
    return Number(await this.redis.eval(RESERVE, keys.length, ...keys, ...args));
  }

  /**
   * The right password: the attempt counted up front as a failure is taken back (the pair starts
   * afresh), and the address is remembered as known for this user.
   */
  async signInSucceeded(username: string, address: string): Promise<void> {
    const keys = [this.key('signin', 'pair', username, address), this.key('signin', 'addr', address), this.key('signin', 'user', username), this.key('signin', 'known', username, address)];
    await this.redis.eval(SUCCEEDED, keys.length, ...keys, KNOWN_MS);
  }

  /** Counts one upload for an API key in the current minute; 0 when within `perMinute`, else seconds until the next minute. */
  async countUpload(keyId: string, perMinute: number, now = Date.now()): Promise<number> {
    if (perMinute <= 0) return 0;
    const minute = Math.floor(now / 60_000);
    const key = this.key('upload', keyId, String(minute));
    // One command per upload (was MULTI, INCR, PEXPIRE, EXEC): every STOW request pays for it.
    const count = Number(await this.redis.eval(COUNT_UPLOAD, 1, key, 120_000));
    return count > perMinute ? Math.ceil(((minute + 1) * 60_000 - now) / 1000) : 0;
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
