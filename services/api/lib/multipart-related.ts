/**
 * Streaming reader for multipart/related bodies (RFC 2387 over RFC 2046). Part bodies are handed
 * to a sink chunk by chunk as they arrive; at most one delimiter's worth of bytes is held back,
 * so a 50 MB part never sits in memory. Awaiting the sink pauses reading: backpressure.
 */
export type PartHeaders = Record<string, string>;

export interface PartSink {
  write(chunk: Buffer): Promise<void>;
  end(): Promise<void>;
  /** The body ended inside this part. */
  abort(): Promise<void>;
}

export class MultipartError extends Error {}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

type State = 'preamble' | 'after-delimiter' | 'headers' | 'body' | 'done';

export async function readMultipartRelated(
  source: AsyncIterable<Buffer>,
  boundary: string,
  onPart: (headers: PartHeaders, index: number) => Promise<PartSink>,
  opts: { maxParts?: number } = {},
): Promise<number> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const maxParts = opts.maxParts ?? 10_000;
  // A virtual CRLF lets the first boundary (which may open the body) match the same delimiter.
  let buf: Buffer = Buffer.from(CRLF);
  let state: State = 'preamble';
  let sink: PartSink | undefined;
  let parts = 0;

  const step = async (): Promise<boolean> => {
    switch (state) {
      case 'preamble': {
        const at = buf.indexOf(delimiter);
        if (at < 0) {
          buf = buf.subarray(Math.max(0, buf.length - delimiter.length + 1));
          return false;
        }
        buf = buf.subarray(at + delimiter.length);
        state = 'after-delimiter';
        return true;
      }
      case 'after-delimiter': {
        if (buf.length < 2) return false;
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          state = 'done';
          return false;
        }
        const eol = buf.indexOf(CRLF);
        if (eol < 0) {
          if (buf.length > 1024) throw new MultipartError('malformed multipart body: boundary line not followed by CRLF');
          return false;
        }
        if (buf.subarray(0, eol).toString('latin1').trim() !== '') throw new MultipartError('malformed multipart body: text after a boundary');
        buf = buf.subarray(eol + 2);
        state = 'headers';
        return true;
      }
      case 'headers': {
        let headerText: string;
        if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) {
          headerText = '';
          buf = buf.subarray(2);
        } else {
          const end = buf.indexOf(HEADER_END);
          if (end < 0) {
            if (buf.length > MAX_HEADER_BYTES) throw new MultipartError('malformed multipart body: part headers too long or not terminated');
            return false;
          }
          headerText = buf.subarray(0, end).toString('latin1');
          buf = buf.subarray(end + 4);
        }
        if (++parts > maxParts) throw new MultipartError(`too many parts (limit ${maxParts})`);
        sink = await onPart(parseHeaders(headerText), parts - 1);
        state = 'body';
        return true;
      }
      case 'body': {
        const at = buf.indexOf(delimiter);
        if (at < 0) {
          const safe = buf.length - delimiter.length + 1;
          if (safe > 0) {
            await sink!.write(buf.subarray(0, safe));
            buf = buf.subarray(safe);
          }
          return false;
        }
        if (at > 0) await sink!.write(buf.subarray(0, at));
        const finished = sink!;
        sink = undefined;
        buf = buf.subarray(at + delimiter.length);
        state = 'after-delimiter';
        await finished.end();
        return true;
      }
      case 'done':
        return false;
    }
  };

  try {
    for await (const chunk of source) {
      if ((state as State) === 'done') continue; // epilogue: read and ignore
      if ((state as State) === 'body' && buf.length < delimiter.length && chunk.length >= delimiter.length
        && Buffer.concat([buf, chunk.subarray(0, delimiter.length - 1)]).indexOf(delimiter) < 0) {
        // Mid-part, only the held-back tail (shorter than a delimiter) is pending and no delimiter
        // starts in it: it is body. Pass it on and take the chunk as it is, rather than copying
        // every chunk of a large part into a new buffer (a copy per network read, and the GC).
        if (buf.length) await sink!.write(buf);
        buf = chunk;
      } else {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      }
      while (await step());
    }
    if ((state as State) !== 'done') {
      throw new MultipartError(parts === 0 && state === 'preamble'
        ? 'no multipart boundary found in the body (does the boundary parameter match?)'
        : 'multipart body ended before its closing boundary');
    }
  } catch (error) {
    if (sink) await sink.abort().catch(() => {});
    throw error;
  }
  return parts;
}

function parseHeaders(text: string): PartHeaders {
  const headers: PartHeaders = {};
  for (const line of text.split('\r\n')) {
    if (!line) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError('malformed multipart body: bad part header line');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}
