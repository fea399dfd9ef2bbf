// The console's only way to the control plane: the REST API with `Authorization: Bearer`, the
// token from sessionStorage (gone when the tab closes). No cookies are sent or set, so another
// site cannot ride a session (docs/adr/0022-admin-console.md).

const TOKEN_KEY = "ai-gateway-console-token";

export type Access = "admin" | "read_only";

/** An API failure in the API's own error shape: `{"error":{"message","type","param","code"}}`. */
export class ApiError extends Error {
  status: number;
  code: string;
  param: string | null;
  constructor(status: number, message: string, code: string, param: string | null) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
  /** 412 (If-Match no longer matches) or a 409 conflict: someone else changed the object. */
  get isConflict(): boolean {
    return this.status === 412 || (this.status === 409 && this.code !== "in_use" && this.code !== "already_exists");
  }
}

export interface Reply<T> {
  status: number;
  data: T;
  etag: string | null;
}

let onUnauthorized: (message: string) => void = () => {};

export function setUnauthorizedHandler(f: (message: string) => void): void {
  onUnauthorized = f;
}

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** One API call. Non-2xx answers throw an [`ApiError`]; a 401 also signs the console out. */
export async function call<T = any>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  tok: string = token(),
): Promise<Reply<T>> {
  const h: Record<string, string> = { Authorization: `Bearer ${tok}`, Accept: "application/json", ...headers };
  let payload: string | undefined;
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const resp = await fetch(path, {
    method,
    headers: h,
    body: payload,
    credentials: "omit",
    cache: "no-store",
    referrerPolicy: "no-referrer",
  });
  const text = await resp.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!resp.ok) {
    const e = data && typeof data === "object" ? data.error ?? {} : {};
    const err = new ApiError(resp.status, e.message ?? `HTTP ${resp.status}`, e.code ?? "", e.param ?? null);
    if (resp.status === 401 && tok === token()) onUnauthorized(err.message);
    throw err;
  }
  return { status: resp.status, data: data as T, etag: resp.headers.get("etag") };
}

/** Path segment for a name: routes and prices may hold `/`, which the API's `{*name}` takes as is. */
export function seg(name: string, slashes = false): string {
  const e = encodeURIComponent(name);
  return slashes ? e.replace(/%2F/gi, "/") : e;
}

/** Every object of a collection, following `next_cursor`. */
export async function listAll<T = any>(collection: string): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const q: string = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : "?limit=1000";
    const r: Reply<{ items: T[]; next_cursor: string | null }> = await call("GET", `/v1/${collection}${q}`);
    out.push(...r.data.items);
    cursor = r.data.next_cursor;
    if (!cursor) break;
  }
  return out;
}

/** `If-Match` for a version the console loaded. */
export function ifMatch(version: number): Record<string, string> {
  return { "If-Match": `"${version}"` };
}
