// Small DOM helpers: elements built with properties and listeners, never from HTML strings, so
// API data is always text and the CSP needs no inline script or style.

import { ApiError } from "./api";

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, any>;

let ids = 0;
/** A fresh element id (labels point at controls by id). */
export function uid(prefix = "f"): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** `h("button", {class: "x", onclick: f}, "text")`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "for") (el as HTMLLabelElement).htmlFor = v;
    else if (k in el && k !== "list" && typeof v !== "string") (el as any)[k] = v;
    else if (k === "value") (el as any).value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.firstChild.remove();
}

/** A labelled control with a slot for the API's validation message about it. */
export interface Field {
  name: string; // the API's field path (`budget.limit_usd`, `targets[0].model`)
  wrap: HTMLElement;
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  error: HTMLElement;
}

export function field(
  name: string,
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): Field {
  const id = control.id || uid(name.replace(/[^a-z0-9]/gi, "-"));
  control.id = id;
  control.name = name;
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  const described = [`${id}-error`];
  let hintEl: HTMLElement | null = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${id}-hint` }, hint);
    described.push(`${id}-hint`);
  }
  control.setAttribute("aria-describedby", described.join(" "));
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl, error);
  return { name, wrap, control, error };
}

export function input(type: string, value: string | number | undefined | null = "", attrs: Attrs = {}): HTMLInputElement {
  return h("input", { type, value: value === undefined || value === null ? "" : String(value), ...attrs });
}

export function select(options: [string, string][], value = "", attrs: Attrs = {}): HTMLSelectElement {
  const s = h("select", attrs, ...options.map(([v, label]) => h("option", { value: v }, label)));
  s.value = value;
  return s;
}

/** Shows an API error next to the field it names, or in the form's banner when it names none. */
export function showError(fields: Field[], banner: HTMLElement, err: unknown): void {
  for (const f of fields) {
    f.error.textContent = "";
    f.control.removeAttribute("aria-invalid");
  }
  banner.textContent = "";
  banner.hidden = true;
  if (!(err instanceof ApiError)) {
    banner.textContent = String(err instanceof Error ? err.message : err);
    banner.hidden = false;
    return;
  }
  const p = err.param ?? "";
  const target =
    fields.find((f) => f.name === p) ??
    fields
      .filter((f) => p.startsWith(`${f.name}.`) || p.startsWith(`${f.name}[`) || f.name.startsWith(`${p}.`))
      .sort((a, b) => b.name.length - a.name.length)[0];
  if (target && p) {
    target.error.textContent = err.message;
    target.control.setAttribute("aria-invalid", "true");
    target.control.focus();
  } else {
    banner.textContent = `${err.message}${err.status ? ` (HTTP ${err.status})` : ""}`;
    banner.hidden = false;
  }
}

export function clearErrors(fields: Field[], banner: HTMLElement): void {
  for (const f of fields) {
    f.error.textContent = "";
    f.control.removeAttribute("aria-invalid");
  }
  banner.textContent = "";
  banner.hidden = true;
}

/** A modal confirmation; resolves true on confirm. */
export function confirmDialog(title: string, body: Child[], confirmLabel: string, danger = true): Promise<boolean> {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: "dialog", "aria-labelledby": "dlg-title" });
    const done = (v: boolean) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    append(dlg, [
      h("h2", { id: "dlg-title" }, title),
      h("div", { class: "dialog-body" }, ...body),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => done(false) }, "Cancel"),
        h("button", { type: "button", class: danger ? "danger" : "primary", onclick: () => done(true) }, confirmLabel),
      ),
    ]);
    dlg.addEventListener("cancel", () => done(false));
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function fmtInt(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : Math.round(n).toLocaleString("en-US");
}

/** USD from picodollars, to the micro-dollar (at least two decimals): `$0.001025`, `$12.50`. */
export function fmtUsd(pusd: number): string {
  const fixed = (pusd / 1e12).toFixed(6).replace(/0{1,4}$/, "");
  return `$${fixed}`;
}

export function fmtTime(unix: number | string | null | undefined): string {
  if (unix === null || unix === undefined || unix === "") return "—";
  const d = typeof unix === "number" ? new Date(unix * 1000) : new Date(unix);
  if (Number.isNaN(d.getTime())) return String(unix);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function ago(unix: number, now = Date.now() / 1000): string {
  const s = Math.max(0, Math.round(now - unix));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A table in a horizontally scrolling wrapper (phones). */
export function table(caption: string, head: string[], rows: Child[][], attrs: Attrs = {}): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attrs,
      h("caption", null, caption),
      h("thead", null, h("tr", null, ...head.map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        null,
        ...(rows.length
          ? rows.map((r) => h("tr", null, ...r.map((c, i) => h("td", { "data-label": head[i] ?? "" }, c))))
          : [h("tr", null, h("td", { colSpan: head.length, class: "empty" }, "Nothing yet."))]),
      ),
    ),
  );
}

export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}
