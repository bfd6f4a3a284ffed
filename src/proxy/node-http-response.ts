/**
 * The `Response` that `createNodeHttpFetch` returns: the part of the WHATWG Fetch `Response` this
 * code base reads (status, ok, headers.get, body, text, json, arrayBuffer, cancel through the
 * body), built straight on a `node:http` IncomingMessage.
 *
 * Why not `new Response(...)`: the global `Response` and `Headers` are undici's, and touching
 * either loads and compiles all of undici (~50–70 ms) on the proxy's first request; the client
 * waits for that. Why not `Readable.toWeb()`: a JSON answer read with `text()` never needs a web
 * stream at all, and the stream made for SSE is a small pull source over the message.
 */
import type { Readable } from 'node:stream';

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** Fetch spec: 101, 103, 204, 205 and 304 responses have a null body; so has every HEAD answer. */
export function isNullBodyStatus(status: number): boolean {
  return NULL_BODY_STATUSES.has(status);
}

/** Response headers as node:http parsed them (lower-case names; repeats joined, set-cookie a list). Read-only, like a fetch Response's. */
export class ResponseHeaders {
  readonly #raw: NodeJS.Dict<string | string[]>;

  constructor(raw: NodeJS.Dict<string | string[]>) {
    this.#raw = raw;
  }

  get(name: string): string | null {
    const v = this.#raw[name.toLowerCase()];
    if (v === undefined) return null;
    return typeof v === 'string' ? v : v.join(', ');
  }

  has(name: string): boolean {
    return this.#raw[name.toLowerCase()] !== undefined;
  }

  getSetCookie(): string[] {
    const v = this.#raw['set-cookie'];
    return v === undefined ? [] : typeof v === 'string' ? [v] : [...v];
  }

  forEach(fn: (value: string, name: string, parent: ResponseHeaders) => void): void {
    for (const [name, value] of this) fn(value, name, this);
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.#raw).sort()) {
      const v = this.#raw[name];
      if (v === undefined) continue;
      // Fetch spec "sort and combine": set-cookie stays one entry per cookie.
      if (name === 'set-cookie' && typeof v !== 'string') for (const c of v) yield [name, c];
      else yield [name, typeof v === 'string' ? v : v.join(', ')];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  set(): never {
    throw new TypeError('immutable: response headers cannot be changed');
  }

  append(): never {
    throw new TypeError('immutable: response headers cannot be changed');
  }

  delete(): never {
    throw new TypeError('immutable: response headers cannot be changed');
  }
}

export interface BodySource {
  /** The (decoded) body bytes; null for a null-body response. */
  readable: Readable | null;
  /** The error a read fails with when the body breaks: the abort reason, else a TypeError like fetch's. */
  failure(err: unknown): unknown;
  /** The reader gave up on the body (cancel): drop the connection unless the body is already complete. */
  cancel(): Promise<void>;
}

/** The bytes of a text body without a UTF-8 BOM (Fetch spec "UTF-8 decode"). */
function utf8(bytes: Buffer): string {
  const start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  return bytes.toString('utf8', start);
}

async function readAll(stream: ReadableStream<Uint8Array>, onChunk: (chunk: Uint8Array) => void): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onChunk(value);
    }
  } finally {
    reader.releaseLock();
  }
}

function unusable(): TypeError {
  return new TypeError('Body is unusable: Body has already been read');
}

export class NodeHttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: ResponseHeaders;
  readonly url: string;
  readonly redirected = false;
  readonly type = 'basic' as const;
  readonly #source: BodySource;
  #stream: ReadableStream<Uint8Array> | undefined;
  #used = false;

  constructor(init: { status: number; statusText: string; headers: ResponseHeaders; url: string; source: BodySource; stream?: ReadableStream<Uint8Array> }) {
    this.status = init.status;
    this.statusText = init.statusText;
    this.headers = init.headers;
    this.url = init.url;
    this.#source = init.source;
    this.#stream = init.stream;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }

  /** The body as a web stream, made on first access (a `text()` reader never pays for one). */
  get body(): ReadableStream<Uint8Array> | null {
    if (!this.#source.readable) return null;
    this.#stream ??= this.#webStream(this.#source.readable);
    return this.#stream;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  async text(): Promise<string> {
    return utf8(await this.#bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.#bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer());
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.arrayBuffer()], { type: this.headers.get('content-type') ?? '' });
  }

  /** Rare here: hand the bytes to a real Response (this loads undici). */
  async formData(): Promise<FormData> {
    const headers: Record<string, string> = {};
    for (const [k, v] of this.headers) headers[k] = v;
    return new Response(await this.arrayBuffer(), { headers }).formData();
  }

  clone(): NodeHttpResponse {
    if (this.#used) throw unusable();
    const body = this.body;
    let stream: ReadableStream<Uint8Array> | undefined;
    if (body) [this.#stream, stream] = body.tee();
    return new NodeHttpResponse({ status: this.status, statusText: this.statusText, headers: this.headers, url: this.url, source: this.#source, stream });
  }

  /**
   * Reads the body to its end, handing on each chunk as it arrives, straight from the
   * IncomingMessage (no web stream, no promise per chunk). The proxy reads SSE answers this way.
   * Rejects like a body read: the abort reason, or TypeError('terminated') when the body breaks.
   */
  readChunks(onChunk: (chunk: Uint8Array) => void): Promise<void> {
    if (this.#used || this.#stream?.locked) return Promise.reject(unusable());
    this.#used = true;
    const readable = this.#source.readable;
    if (!readable) return Promise.resolve();
    if (this.#stream) return readAll(this.#stream, onChunk);
    const source = this.#source;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      readable.on('data', (chunk: Buffer) => {
        if (settled) return;
        try {
          onChunk(chunk);
        } catch (err) {
          // The reader gave up: the rest of the body is not wanted.
          fail(err);
          void source.cancel();
        }
      });
      readable.once('end', () => {
        if (settled) return;
        settled = true;
        resolve();
      });
      readable.once('error', (err) => fail(source.failure(err)));
      readable.once('close', () => fail(source.failure(new Error('the connection closed before the body ended'))));
    });
  }

  /** Drops the body, as `body.cancel()` does, without making a web stream for it. */
  async discard(): Promise<void> {
    if (this.#stream) return this.#stream.cancel().catch(() => {});
    if (this.#used || !this.#source.readable) return;
    this.#used = true;
    return this.#source.cancel();
  }

  /** The whole body: straight from the IncomingMessage when no web stream was made. */
  async #bytes(): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    await this.readChunks((chunk) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    if (chunks.length === 1 && Buffer.isBuffer(chunks[0])) return chunks[0];
    return Buffer.concat(chunks, size);
  }

  /**
   * A pull source over the Node stream: one chunk queued at most, the socket paused until the
   * reader asks for more (backpressure), chunks handed on as they arrive (SSE keeps streaming).
   */
  #webStream(readable: Readable): ReadableStream<Uint8Array> {
    const source = this.#source;
    const markUsed = () => {
      this.#used = true;
    };
    let finished = false;
    return new ReadableStream<Uint8Array>(
      {
        start(controller) {
          readable.on('data', (chunk: Buffer) => {
            if (finished) return;
            controller.enqueue(chunk);
            if ((controller.desiredSize ?? 0) <= 0) readable.pause();
          });
          readable.once('end', () => {
            if (finished) return;
            finished = true;
            controller.close();
          });
          readable.once('error', (err) => {
            if (finished) return;
            finished = true;
            controller.error(source.failure(err));
          });
          readable.once('close', () => {
            if (finished) return;
            finished = true;
            controller.error(source.failure(new Error('the connection closed before the body ended')));
          });
          readable.pause();
        },
        pull() {
          readable.resume();
        },
        cancel() {
          markUsed();
          if (finished) return;
          finished = true;
          return source.cancel();
        },
      },
      { highWaterMark: 1 },
    );
  }
}
