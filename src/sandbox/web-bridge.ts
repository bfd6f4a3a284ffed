// node:http ↔ fetch: the SDK v2 server entry (`createMcpHandler`) is a fetch-style handler; the
// sandbox and the benchmark server run on node:http. Used by eras.ts and bench/server.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A fetch `Request` with the node request's method and headers; the body travels parsed, beside it. */
export function webRequestOf(req: IncomingMessage, url: string, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return new Request(url, { method: req.method ?? 'GET', headers, signal });
}

/** Writes a fetch `Response` to node's `res`, streaming SSE bodies until either side closes. */
export async function sendWebResponse(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    // One JSON body: one write.
    res.end(Buffer.from(await response.arrayBuffer()));
    return;
  }
  res.flushHeaders();
  const reader = response.body.getReader();
  res.once('close', () => void reader.cancel().catch(() => {}));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));
    }
  } catch {
    // the client went away (reader cancelled) or the handler aborted the stream
  }
  res.end();
}
