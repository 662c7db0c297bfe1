/**
 * XMLHttpRequest on top of fetch, for browser clients run in tests (dicomweb-client, which OHIF
 * uses, speaks XHR only). Covers what such clients use; every response is kept in `responses`
 * so a test can read headers the client does not expose (e.g. QIDO's Warning).
 */
export const responses: { url: string; status: number; headers: Headers }[] = [];

export class FetchXMLHttpRequest {
  readyState = 0;
  status = 0;
  response: unknown = null;
  responseType = '';
  withCredentials = false;
  onreadystatechange?: () => void;
  onloadstart?: () => void;
  onloadend?: () => void;
  onprogress?: () => void;
  onerror?: (e: unknown) => void;
  private method = 'GET';
  private url = '';
  private readonly requestHeaders: Record<string, string> = {};
  private responseHeaders = new Headers();

  open(method: string, url: string) { this.method = method; this.url = url; this.readyState = 1; }
  setRequestHeader(name: string, value: string) { this.requestHeaders[name] = value; }
  getResponseHeader(name: string) { return this.responseHeaders.get(name); }
  getAllResponseHeaders() { return [...this.responseHeaders].map(([k, v]) => `${k}: ${v}`).join('\r\n'); }

  send(body?: BodyInit) {
    this.onloadstart?.();
    fetch(this.url, { method: this.method, headers: this.requestHeaders, body }).then(async (res) => {
      this.status = res.status;
      this.responseHeaders = res.headers;
      responses.push({ url: this.url, status: res.status, headers: res.headers });
      const buffer = await res.arrayBuffer();
      if (this.responseType === 'arraybuffer') this.response = buffer;
      else if (this.responseType === 'json') this.response = buffer.byteLength ? JSON.parse(Buffer.from(buffer).toString('utf8')) : null;
      else this.response = Buffer.from(buffer).toString('utf8');
      this.readyState = 4;
      this.onreadystatechange?.();
      this.onloadend?.();
    }, (error) => {
      this.readyState = 4;
      this.onerror?.(error);
      this.onreadystatechange?.();
    });
  }
}
