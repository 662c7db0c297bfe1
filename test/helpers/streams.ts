import http from 'node:http';

/** An open /api/events stream (or its refusal): status, the text received so far, and whether it ended. */
export interface EventStream {
  status: number;
  text(): string;
  ended: Promise<void>;
  close(): void;
}

/** Opens GET /api/events with a session cookie; resolves once the status is known (for 200, after the hello event). */
export function openEventStream(url: string, cookie: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${url}/api/events`, { headers: { cookie, accept: 'text/event-stream' }, agent: false }, (response) => {
      let text = '';
      const ended = new Promise<void>((done) => { response.once('close', done); response.once('end', done); });
      const stream: EventStream = { status: response.statusCode ?? 0, text: () => text, ended, close: () => request.destroy() };
      response.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('event: hello')) resolve(stream);
      });
      response.on('error', () => {});
      if (response.statusCode !== 200) response.once('end', () => resolve(stream));
    });
    request.on('error', reject);
  });
}

/** Resolves true when `promise` settles within `ms`, false otherwise (a bound for waiting on events). */
export function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); }),
  ]).finally(() => clearTimeout(timer));
}
