// The console's pages. Every read and write is a REST API call (docs/control-plane.md); edits
// send If-Match with the version that was loaded, so a stale edit shows the conflict instead of
// overwriting someone else's change.

import { ApiError, call, ifMatch, listAll, seg } from "./api";
import { lineChart } from "./charts";
import {
  Field,
  ago,
  append,
  clear,
  clearErrors,
  confirmDialog,
  field,
  fmtInt,
  fmtTime,
  fmtUsd,
  h,
  input,
  select,
  showError,
  table,
  utcDay,
} from "./dom";

/** What a page knows about the session. */
export interface Ctx {
  admin: boolean;
  query: URLSearchParams;
  rerender: () => Promise<void>;
}

interface Page {
  title: string;
  render: (el: HTMLElement, ctx: Ctx) => Promise<void>;
}

interface UsageRow {
  caller: string;
  key: string | null;
  provider: string;
  model: string;
  period: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  reasoning_tokens: number;
  cost_pusd: number;
  cost_usd: string;
}

const PROVIDER_KINDS: [string, string][] = [
  ["openai", "OpenAI"],
  ["anthropic", "Anthropic"],
  ["gemini", "Gemini"],
  ["azure_openai", "Azure OpenAI"],
  ["bedrock", "AWS Bedrock"],
];

async function usage(params: Record<string, string>): Promise<UsageRow[]> {
  const q = new URLSearchParams(params).toString();
  return (await call<{ data: UsageRow[] }>("GET", `/v1/usage${q ? `?${q}` : ""}`)).data.data;
}

function sum(rows: UsageRow[]): { requests: number; tokens: number; cost: number } {
  return rows.reduce(
    (a, r) => ({
      requests: a.requests + r.requests,
      tokens: a.tokens + r.input_tokens + r.output_tokens,
      cost: a.cost + r.cost_pusd,
    }),
    { requests: 0, tokens: 0, cost: 0 },
  );
}

function groupBy(rows: UsageRow[], key: (r: UsageRow) => string): [string, { requests: number; tokens: number; cost: number }][] {
  const m = new Map<string, UsageRow[]>();
  for (const r of rows) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
  return [...m.entries()]
    .map(([k, rs]) => [k, sum(rs)] as [string, ReturnType<typeof sum>])
    .sort((a, b) => b[1].cost - a[1].cost || b[1].tokens - a[1].tokens);
}

const callerLabel = (r: UsageRow) => r.key ?? r.caller;

function stat(label: string, value: string, id: string): HTMLElement {
  return h("div", { class: "stat", "data-stat": id }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value));
}

// --- overview ------------------------------------------------------------------------------------

async function overview(el: HTMLElement): Promise<void> {
  const [today, month, snap] = await Promise.all([
    usage({ period: "day" }),
    usage({ period: "month" }),
    call<any>("GET", "/v1/snapshot").then(
      (r) => r.data,
      (e) => (e instanceof ApiError && e.status === 503 ? null : Promise.reject(e)),
    ),
  ]);
  const t = sum(today);
  const m = sum(month);
  append(el, [
    h(
      "section",
      { class: "stats", "aria-label": "Totals" },
      stat("Requests today", fmtInt(t.requests), "requests-today"),
      stat("Tokens today", fmtInt(t.tokens), "tokens-today"),
      stat("Cost today", fmtUsd(t.cost), "cost-today"),
      stat("Requests this month", fmtInt(m.requests), "requests-month"),
      stat("Tokens this month", fmtInt(m.tokens), "tokens-month"),
      stat("Cost this month", fmtUsd(m.cost), "cost-month"),
    ),
  ]);
  const top = (title: string, rows: [string, ReturnType<typeof sum>][]) =>
    table(
      title,
      ["Name", "Requests", "Tokens", "Cost"],
      rows.slice(0, 5).map(([k, s]) => [k, fmtInt(s.requests), fmtInt(s.tokens), fmtUsd(s.cost)]),
    );
  el.append(
    h(
      "div",
      { class: "grid2" },
      h("section", { class: "card" }, top("Top keys and callers this month", groupBy(month, callerLabel))),
      h("section", { class: "card" }, top("Top models this month", groupBy(month, (r) => `${r.provider}/${r.model}`))),
    ),
  );
  if (!snap) {
    el.append(h("p", { class: "banner" }, "No snapshot built yet: the store is empty or unreachable."));
    return;
  }
  const problems: string[][] = [
    ...(snap.warnings ?? []).map((w: string) => ["control plane", "warning", w]),
    ...(snap.invalid ?? []).map((i: any) => ["control plane", `${i.kind} ${i.name}`, `${i.field}: ${i.reason}`]),
    ...(snap.nodes ?? []).flatMap((n: any) =>
      (n.rejected ?? []).map((i: any) => [n.node, `${i.kind} ${i.name}`, `${i.field}: ${i.reason}`]),
    ),
  ];
  const now = Date.now() / 1000;
  el.append(
    h(
      "section",
      { class: "card" },
      h(
        "p",
        null,
        `Config version ${snap.version}: ${snap.providers} providers, ${snap.routes} routes, ${snap.keys} keys, ${snap.prices} prices (${fmtInt(snap.bytes)} bytes).`,
      ),
      table(
        "Connected Envoys",
        ["Node", "Config version", "Acknowledged", "Status"],
        (snap.nodes ?? []).map((n: any) => [
          n.node,
          String(n.version),
          ago(n.reported_at, now),
          n.version === snap.version ? "current" : `behind (current ${snap.version})`,
        ]),
        { "data-table": "nodes" },
      ),
    ),
    h(
      "section",
      { class: "card" },
      table("Errors: objects refused by the validator, and warnings", ["Where", "Object", "Problem"], problems, {
        "data-table": "errors",
      }),
    ),
  );
}

// --- generic object pages --------------------------------------------------------------------------

interface Spec {
  kind: string; // API collection: providers, routes, prices, keys
  noun: string;
  slashes: boolean;
  nameOf: (o: any) => string;
  columns: string[];
  row: (o: any, extra: any) => (Node | string)[];
  /** The form's fields for a new object or the loaded one; `body()` builds the request body. */
  form: (o: any | null, extra: any) => { fields: Field[]; extraNodes?: Node[]; body: () => any };
  /** What still uses an object, for the delete warning. */
  users?: (o: any, extra: any) => string[];
  load?: () => Promise<any>;
  extraActions?: (o: any, ctx: Ctx, refresh: () => Promise<void>, extra: any) => Node[];
  afterCreate?: (data: any) => void;
}

function numOrUndef(v: string): number | undefined {
  return v.trim() === "" ? undefined : Number(v);
}

function objectPage(spec: Spec): Page["render"] {
  return async (el, ctx) => {
    const extraSlot = h("div", { class: "extra-slot" });
    const formSlot = h("section", { class: "card form-card" });
    const listSlot = h("section", { class: "card" });
    el.append(extraSlot, formSlot, listSlot);
    let extra: any = null;

    const showForm = (obj: any | null) => {
      clear(formSlot);
      const editing = obj !== null;
      const { fields, extraNodes, body } = spec.form(obj, extra);
      const banner = h("div", { class: "banner error", role: "alert", hidden: true });
      const title = editing
        ? `Edit ${spec.noun} ${spec.nameOf(obj)} (version ${obj.version})`
        : `Create a ${spec.noun}`;
      const fs = h(
        "fieldset",
        { disabled: !ctx.admin },
        h("legend", null, title),
        banner,
        // Fields already placed (a route's target rows) stay where their form part put them.
        ...fields.filter((f) => !f.wrap.parentElement).map((f) => f.wrap),
        ...(extraNodes ?? []),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "submit", class: "primary mutate" }, editing ? "Save" : `Create ${spec.noun}`),
          editing ? h("button", { type: "button", class: "secondary", onclick: () => showForm(null) }, "Cancel") : null,
        ),
      );
      const form = h("form", { "data-form": spec.kind, novalidate: true }, fs);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        clearErrors(fields, banner);
        try {
          let b: any;
          try {
            b = body();
          } catch (e) {
            showError(fields, banner, e);
            return;
          }
          if (editing) {
            await call("PUT", `/v1/${spec.kind}/${seg(spec.nameOf(obj), spec.slashes)}`, b, ifMatch(obj.version));
            flash(`Saved ${spec.noun} ${spec.nameOf(obj)}.`);
          } else {
            const r = await call("POST", `/v1/${spec.kind}`, b);
            flash(`Created ${spec.noun} ${spec.nameOf(r.data)}.`);
            spec.afterCreate?.(r.data);
          }
          await refresh();
          showForm(null);
        } catch (e) {
          if (e instanceof ApiError && editing && e.isConflict) {
            await conflict(obj);
            return;
          }
          showError(fields, banner, e);
        }
      });
      formSlot.append(form);
    };

    const conflict = async (obj: any) => {
      let now: any = null;
      try {
        now = (await call("GET", `/v1/${spec.kind}/${seg(spec.nameOf(obj), spec.slashes)}`)).data;
      } catch {
        now = null;
      }
      const box = h(
        "div",
        { class: "banner conflict", role: "alert", "data-conflict": "true" },
        h("strong", null, "Conflict: "),
        now
          ? `${spec.noun} ${spec.nameOf(obj)} was changed by someone else since you loaded version ${obj.version}; it is now version ${now.version}. Your edit was not saved.`
          : `${spec.noun} ${spec.nameOf(obj)} was deleted by someone else. Your edit was not saved.`,
        h("pre", { class: "diff" }, now ? diffText(obj, now) : ""),
        h(
          "div",
          { class: "actions" },
          now
            ? h("button", { type: "button", class: "primary", onclick: () => showForm(now) }, "Load their version")
            : null,
          h("button", { type: "button", class: "secondary", onclick: () => box.remove() }, "Dismiss"),
        ),
      );
      formSlot.prepend(box);
      await refresh();
    };

    const flash = (msg: string) => {
      const m = h("p", { class: "banner ok", role: "status" }, msg);
      el.querySelectorAll(".banner.ok").forEach((n) => n.remove());
      el.prepend(m);
    };

    const refresh = async () => {
      extra = spec.load ? await spec.load() : null;
      const items = await listAll(spec.kind);
      clear(listSlot);
      listSlot.append(
        table(
          `${items.length} ${spec.noun}${items.length === 1 ? "" : "s"}`,
          [...spec.columns, "Version", "Actions"],
          items.map((o) => [
            ...spec.row(o, extra),
            String(o.version),
            h(
              "div",
              { class: "row-actions" },
              h(
                "button",
                {
                  type: "button",
                  class: "small mutate",
                  disabled: !ctx.admin,
                  "aria-label": `Edit ${spec.noun} ${spec.nameOf(o)}`,
                  onclick: () => {
                    showForm(o);
                    formSlot.scrollIntoView({ block: "start" });
                  },
                },
                "Edit",
              ),
              ...(spec.extraActions?.(o, ctx, refresh, extra) ?? []),
              h(
                "button",
                {
                  type: "button",
                  class: "small danger mutate",
                  disabled: !ctx.admin,
                  "aria-label": `Delete ${spec.noun} ${spec.nameOf(o)}`,
                  onclick: () => del(o),
                },
                "Delete",
              ),
            ),
          ]),
          { "data-table": spec.kind },
        ),
      );
    };

    const del = async (o: any) => {
      const users = spec.users?.(o, extra) ?? [];
      const ok = await confirmDialog(
        `Delete ${spec.noun} ${spec.nameOf(o)}?`,
        users.length
          ? [
              h("p", { class: "warning" }, `Still in use — deleting may be refused or break these:`),
              h("ul", null, ...users.map((u) => h("li", null, u))),
            ]
          : [h("p", null, "Nothing uses it. This cannot be undone.")],
        "Delete",
      );
      if (!ok) return;
      try {
        await call("DELETE", `/v1/${spec.kind}/${seg(spec.nameOf(o), spec.slashes)}`, undefined, ifMatch(o.version));
        flash(`Deleted ${spec.noun} ${spec.nameOf(o)}.`);
      } catch (e) {
        const msg = e instanceof ApiError && e.isConflict ? `Conflict: ${e.message}` : e instanceof Error ? e.message : String(e);
        el.prepend(h("p", { class: "banner error", role: "alert" }, `Not deleted: ${msg}`));
      }
      await refresh();
    };

    (extraSlot as any).refresh = refresh;
    await refresh();
    showForm(null);
  };
}

function diffText(before: any, after: any): string {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const lines: string[] = [];
  for (const k of keys) {
    if (["created_at", "updated_at", "version"].includes(k)) continue;
    const a = JSON.stringify(before[k]);
    const b = JSON.stringify(after[k]);
    if (a !== b) lines.push(`${k}: ${a ?? "—"} → ${b ?? "—"}`);
  }
  return lines.join("\n");
}

// --- providers ---------------------------------------------------------------------------------------

const providers = objectPage({
  kind: "providers",
  noun: "provider",
  slashes: false,
  nameOf: (o) => o.name,
  columns: ["Name", "Kind", "Cluster", "Credential"],
  row: (o) => [o.name, o.kind, o.cluster, o.credential ?? "—"],
  load: async () => ({ routes: await listAll("routes"), prices: await listAll("prices") }),
  users: (o, x) => [
    ...x.routes.filter((r: any) => r.targets.some((t: any) => t.provider === o.name)).map((r: any) => `route ${r.model}`),
    ...x.prices.filter((p: any) => p.provider === o.name).map((p: any) => `price ${p.name}`),
  ],
  form: (o) => {
    const name = field("name", "Name", input("text", o?.name, { required: true, readOnly: !!o, autocomplete: "off" }));
    const kind = field("kind", "Kind", select(PROVIDER_KINDS, o?.kind ?? "openai"));
    const cluster = field("cluster", "Envoy cluster", input("text", o?.cluster, { required: true }), "The upstream cluster in the Envoy config that reaches this provider.");
    const cred = field(
      "credential",
      "Credential reference",
      input("text", o?.credential, { placeholder: "env:AI_GATEWAY_PROVIDER_OPENAI" }),
      "env:VAR or a Secrets Manager ARN — never the secret itself.",
    );
    const prefix = field("path_prefix", "Path prefix (optional)", input("text", o?.path_prefix));
    const settings = field(
      "settings",
      "Kind-specific settings (JSON, optional)",
      h("textarea", { rows: 3, spellcheck: false }, o?.settings ? JSON.stringify(o.settings, null, 1) : ""),
      'e.g. {"bedrock":{"region":"us-east-1"}} or {"azure":{...}}',
    );
    const fields = [name, kind, cluster, cred, prefix, settings];
    return {
      fields,
      body: () => {
        const b: any = { name: name.control.value.trim(), kind: kind.control.value, cluster: cluster.control.value.trim() };
        if (cred.control.value.trim()) b.credential = cred.control.value.trim();
        if (prefix.control.value.trim()) b.path_prefix = prefix.control.value.trim();
        if (settings.control.value.trim()) {
          try {
            b.settings = JSON.parse(settings.control.value);
          } catch (e) {
            throw new ApiError(400, `settings is not valid JSON: ${e instanceof Error ? e.message : e}`, "invalid_field", "settings");
          }
        }
        return b;
      },
    };
  },
});

// --- routes ------------------------------------------------------------------------------------------

const routes = objectPage({
  kind: "routes",
  noun: "route",
  slashes: true,
  nameOf: (o) => o.model,
  columns: ["Model", "Targets (weighted)"],
  row: (o) => {
    const total = o.targets.reduce((a: number, t: any) => a + (t.weight ?? 1), 0) || 1;
    return [
      o.model,
      h(
        "ul",
        { class: "plain" },
        ...o.targets.map((t: any) =>
          h("li", null, `${t.provider} → ${t.model} · weight ${t.weight ?? 1} (${Math.round(((t.weight ?? 1) * 100) / total)}%)`),
        ),
      ),
    ];
  },
  load: async () => ({ providers: await listAll("providers"), keys: await listAll("keys") }),
  users: (o, x) =>
    x.keys
      .filter((k: any) => k.status !== "revoked" && k.allowed_models.includes(o.model))
      .map((k: any) => `key ${k.name} allows this model`),
  form: (o, x) => {
    const model = field("model", "Public model name", input("text", o?.model, { required: true, readOnly: !!o }), "What clients send as \"model\".");
    const fields: Field[] = [model];
    const rowsEl = h("div", { class: "targets" });
    const provOpts: [string, string][] = x.providers.map((p: any) => [p.name, `${p.name} (${p.kind})`]);
    const rows: { provider: Field; model: Field; weight: Field; el: HTMLElement }[] = [];
    const renumber = () => {
      rows.forEach((r, i) => {
        r.provider.name = `targets[${i}].provider`;
        r.model.name = `targets[${i}].model`;
        r.weight.name = `targets[${i}].weight`;
        const ls = r.el.querySelectorAll("label");
        ls[0].textContent = `Target ${i + 1} provider`;
        ls[1].textContent = `Target ${i + 1} provider model`;
        ls[2].textContent = `Target ${i + 1} weight`;
      });
    };
    const addRow = (t: any) => {
      const provider = field("targets[0].provider", "Target provider", select(provOpts, t?.provider ?? provOpts[0]?.[0] ?? ""));
      const tm = field("targets[0].model", "Target provider model", input("text", t?.model ?? "", { required: true }));
      const weight = field("targets[0].weight", "Target weight", input("number", t?.weight ?? 1, { min: 0, step: 1 }));
      const r = {
        provider,
        model: tm,
        weight,
        el: h("div", { class: "target-row" }, provider.wrap, tm.wrap, weight.wrap),
      };
      r.el.append(
        h(
          "button",
          {
            type: "button",
            class: "small secondary remove-target",
            onclick: () => {
              if (rows.length <= 1) return;
              rows.splice(rows.indexOf(r), 1);
              r.el.remove();
              fields.splice(fields.indexOf(provider), 3);
              renumber();
            },
          },
          "Remove target",
        ),
      );
      rows.push(r);
      fields.push(provider, tm, weight);
      rowsEl.append(r.el);
      renumber();
    };
    for (const t of o?.targets ?? [null]) addRow(t);
    const add = h("button", { type: "button", class: "small secondary", onclick: () => addRow(null) }, "Add target");
    const note = h(
      "p",
      { class: "hint" },
      "Requests are spread over the targets by weight. Retries and ordered fallback (route policies) are set in the Envoy config, not over this API.",
    );
    return {
      fields,
      extraNodes: [h("fieldset", { class: "inner" }, h("legend", null, "Targets"), rowsEl, add), note],
      body: () => ({
        model: model.control.value.trim(),
        targets: rows.map((r) => ({
          provider: r.provider.control.value,
          model: r.model.control.value.trim(),
          weight: Number(r.weight.control.value || "1"),
        })),
      }),
    };
  },
});

// --- prices ------------------------------------------------------------------------------------------

const prices = objectPage({
  kind: "prices",
  noun: "price",
  slashes: true,
  nameOf: (o) => o.name,
  columns: ["Provider model", "Input $/Mtok", "Output $/Mtok", "Cache read $/Mtok", "Cache write $/Mtok"],
  row: (o) => [o.name, String(o.input_per_mtok), String(o.output_per_mtok), String(o.cache_read_per_mtok ?? "—"), String(o.cache_write_per_mtok ?? "—")],
  load: async () => ({ providers: await listAll("providers") }),
  users: (o) => [`requests to ${o.name} will be recorded at no cost`],
  form: (o, x) => {
    const opts: [string, string][] = x.providers.map((p: any) => [p.name, p.name]);
    if (o && !opts.some(([v]) => v === o.provider)) opts.push([o.provider, o.provider]);
    const provider = field("provider", "Provider", select(opts, o?.provider ?? opts[0]?.[0] ?? "", { disabled: !!o }));
    const model = field("model", "Provider model", input("text", o?.model, { required: true, readOnly: !!o }), "The model name the provider bills (a route target's model).");
    const inp = field("input_per_mtok", "Input, USD per million tokens", input("number", o?.input_per_mtok, { step: "any", min: 0 }));
    const out = field("output_per_mtok", "Output, USD per million tokens", input("number", o?.output_per_mtok, { step: "any", min: 0 }));
    const cr = field("cache_read_per_mtok", "Cache read, USD per million tokens (optional)", input("number", o?.cache_read_per_mtok, { step: "any", min: 0 }));
    const cw = field("cache_write_per_mtok", "Cache write, USD per million tokens (optional)", input("number", o?.cache_write_per_mtok, { step: "any", min: 0 }));
    const fields = [provider, model, inp, out, cr, cw];
    return {
      fields,
      body: () => {
        const b: any = {
          provider: provider.control.value,
          model: model.control.value.trim(),
          input_per_mtok: numOrUndef(inp.control.value),
          output_per_mtok: numOrUndef(out.control.value),
        };
        const c1 = numOrUndef(cr.control.value);
        const c2 = numOrUndef(cw.control.value);
        if (c1 !== undefined) b.cache_read_per_mtok = c1;
        if (c2 !== undefined) b.cache_write_per_mtok = c2;
        return b;
      },
    };
  },
});

// --- keys --------------------------------------------------------------------------------------------

function secretBox(title: string, secret: string, note: string): HTMLElement {
  const out = h("input", { type: "text", readOnly: true, value: secret, class: "secret", "data-secret": "true" });
  const f = field("secret", title, out, note);
  const status = h("span", { class: "hint", role: "status" });
  const box = h(
    "section",
    { class: "banner secret-box", "aria-live": "polite" },
    f.wrap,
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "primary",
          onclick: async () => {
            out.select();
            try {
              await navigator.clipboard.writeText(secret);
              status.textContent = "Copied.";
            } catch {
              status.textContent = "Copy failed: select the text and copy it.";
            }
          },
        },
        "Copy secret",
      ),
      h("button", { type: "button", class: "secondary", onclick: () => box.remove() }, "I have stored it"),
      status,
    ),
  );
  return box;
}

function keyPage(): Page["render"] {
  let secretSlot: HTMLElement | null = null;
  const showSecret = (title: string, secret: string, note: string) => {
    if (!secretSlot) return;
    clear(secretSlot);
    secretSlot.append(secretBox(title, secret, note));
    secretSlot.scrollIntoView({ block: "start" });
  };
  const inner = objectPage({
    kind: "keys",
    noun: "key",
    slashes: false,
    nameOf: (o) => o.name,
    columns: ["Name", "Owner", "Models", "Limits", "Budget (spend)", "Status", "Last used"],
    load: async () => {
      const now = new Date();
      const from = new Date(now.getTime() - 89 * 86400_000);
      const [today, month, recent] = await Promise.all([
        usage({ period: "day" }),
        usage({ period: "month" }),
        usage({ period: "day", from: utcDay(from), to: utcDay(now) }),
      ]);
      const spend = (rows: UsageRow[]) => {
        const m = new Map<string, number>();
        for (const r of rows) if (r.key) m.set(r.key, (m.get(r.key) ?? 0) + r.cost_pusd);
        return m;
      };
      const last = new Map<string, string>();
      for (const r of recent) if (r.key && r.requests > 0 && (last.get(r.key) ?? "") < r.period) last.set(r.key, r.period);
      return { day: spend(today), month: spend(month), last };
    },
    row: (o, x) => {
      const period = o.budget?.period ?? "month";
      const spent = (period === "day" ? x.day : x.month).get(o.name) ?? 0;
      const rotation = o.rotation
        ? h("div", { class: "hint" }, `rotated ${fmtTime(o.rotation.rotated_at)}; old secret valid until ${fmtTime(o.rotation.previous_expires_at)}`)
        : null;
      return [
        o.name,
        o.owner,
        o.allowed_models.join(", "),
        `rpm ${o.rpm ?? "∞"} · tpm ${o.tpm ?? "∞"}`,
        o.budget ? `${fmtUsd(spent)} of $${o.budget.limit_usd} per ${period}` : `${fmtUsd(x.month.get(o.name) ?? 0)} this month, no cap`,
        h("div", null, h("span", { class: `status ${o.status}` }, o.status), rotation ?? ""),
        x.last.get(o.name) ?? "not in the last 90 days",
      ];
    },
    afterCreate: (data) => showSecret(`Secret of key ${data.name}`, data.secret, "Shown once: copy it now. The control plane stores only its hash."),
    extraActions: (o, ctx, refresh) => [
      h(
        "button",
        {
          type: "button",
          class: "small mutate",
          disabled: !ctx.admin || o.status === "revoked",
          "aria-label": `Rotate key ${o.name}`,
          onclick: async () => {
            const grace = input("number", 3600, { min: 0, max: 2592000, step: 1 });
            const f = field("grace_seconds", "Grace period of the old secret (seconds)", grace, "0 cuts the old secret off at once; at most 30 days.");
            const ok = await confirmDialog(`Rotate key ${o.name}?`, [h("p", null, "A new secret is issued; the old one keeps working during the grace period."), f.wrap], "Rotate", false);
            if (!ok) return;
            try {
              const r = await call("POST", `/v1/keys/${seg(o.name)}/rotate`, { grace_seconds: Number(grace.value || "0") }, ifMatch(o.version));
              showSecret(`New secret of key ${o.name}`, r.data.secret, `Shown once. The old secret works until ${fmtTime(r.data.rotation?.previous_expires_at)}.`);
            } catch (e) {
              secretSlot?.append(h("p", { class: "banner error", role: "alert" }, `Not rotated: ${e instanceof Error ? e.message : e}`));
            }
            await refresh();
          },
        },
        "Rotate",
      ),
      h(
        "button",
        {
          type: "button",
          class: "small danger mutate",
          disabled: !ctx.admin || o.status === "revoked",
          "aria-label": `Revoke key ${o.name}`,
          onclick: async () => {
            const ok = await confirmDialog(`Revoke key ${o.name}?`, [h("p", null, "Every request with it is refused within a second (401). A revoked key cannot be reactivated.")], "Revoke");
            if (!ok) return;
            try {
              await call("POST", `/v1/keys/${seg(o.name)}/revoke`, undefined, ifMatch(o.version));
            } catch (e) {
              secretSlot?.append(h("p", { class: "banner error", role: "alert" }, `Not revoked: ${e instanceof Error ? e.message : e}`));
            }
            await refresh();
          },
        },
        "Revoke",
      ),
    ],
    users: (o) => (o.status === "active" ? [`key ${o.name} is active: its secret stops working`] : []),
    form: (o) => {
      const name = field("name", "Name", input("text", o?.name, { required: true, readOnly: !!o, autocomplete: "off" }));
      const owner = field("owner", "Owner", input("text", o?.owner, { required: true }), "A team or person, e.g. team-a@example.com.");
      const models = field(
        "allowed_models",
        "Allowed models",
        input("text", o?.allowed_models?.join(", ") ?? "", { required: true }),
        "Route model names, comma-separated; * allows every route.",
      );
      const rpm = field("rpm", "Requests per minute (empty: unlimited)", input("number", o?.rpm, { min: 1, step: 1 }));
      const tpm = field("tpm", "Tokens per minute (empty: unlimited)", input("number", o?.tpm, { min: 1, step: 1 }));
      const budget = field("budget.limit_usd", "Budget, USD (empty: no cap)", input("number", o?.budget?.limit_usd, { min: 0, step: "any" }));
      const period = field("budget.period", "Budget period", select([["month", "per UTC month"], ["day", "per UTC day"]], o?.budget?.period ?? "month"));
      const fields = [name, owner, models, rpm, tpm, budget, period];
      return {
        fields,
        body: () => {
          const b: any = {
            name: name.control.value.trim(),
            owner: owner.control.value.trim(),
            allowed_models: models.control.value.split(",").map((s) => s.trim()).filter(Boolean),
          };
          const r = numOrUndef(rpm.control.value);
          const t = numOrUndef(tpm.control.value);
          const l = numOrUndef(budget.control.value);
          if (r !== undefined) b.rpm = r;
          if (t !== undefined) b.tpm = t;
          if (l !== undefined) b.budget = { limit_usd: l, period: period.control.value };
          if (o) {
            b.status = o.status;
            if (o.expires_at) b.expires_at = o.expires_at;
          }
          return b;
        },
      };
    },
  });
  return async (el, ctx) => {
    secretSlot = h("div", { class: "secret-slot" });
    el.append(secretSlot);
    await inner(el, ctx);
  };
}

// --- usage -------------------------------------------------------------------------------------------

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? "" : String(v);
  // A leading = + - @ would be a formula in a spreadsheet.
  const safe = /^[=+\-@]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

async function usagePage(el: HTMLElement, ctx: Ctx): Promise<void> {
  const now = new Date();
  const from = ctx.query.get("from") ?? utcDay(new Date(now.getTime() - 13 * 86400_000));
  const to = ctx.query.get("to") ?? utcDay(now);
  const by = ctx.query.get("by") ?? "key";
  const fFrom = field("from", "From (UTC day)", input("date", from, { required: true }));
  const fTo = field("to", "To (UTC day)", input("date", to, { required: true }));
  const fBy = field("by", "Group by", select([["key", "key / caller"], ["model", "model"], ["caller", "caller id"]], by));
  const banner = h("div", { class: "banner error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card filters", "data-form": "usage" },
    banner,
    h("div", { class: "row" }, fFrom.wrap, fTo.wrap, fBy.wrap, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Show"))),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/usage?${new URLSearchParams({ from: fFrom.control.value, to: fTo.control.value, by: fBy.control.value })}`;
  });
  el.append(form);
  let rows: UsageRow[];
  try {
    rows = await usage({ period: "day", from, to });
  } catch (e) {
    showError([fFrom, fTo], banner, e);
    return;
  }
  const label = (r: UsageRow) => (by === "model" ? `${r.provider}/${r.model}` : by === "caller" ? r.caller : callerLabel(r));
  const days: string[] = [];
  for (let d = new Date(`${from}T00:00:00Z`); utcDay(d) <= to && days.length < 400; d = new Date(d.getTime() + 86400_000)) days.push(utcDay(d));
  const groups = groupBy(rows, label).map(([k]) => k);
  const top = groups.slice(0, 8);
  const series = (metric: (r: UsageRow) => number) =>
    top.map((g) => days.map((day) => rows.filter((r) => r.period === day && label(r) === g).reduce((a, r) => a + metric(r), 0)));
  const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  const charts = h("div", { class: "grid2" });
  el.append(charts);
  const tokensCard = h("section", { class: "card chart-card", "aria-label": "Tokens per day" }, h("h2", null, "Tokens per day"));
  const costCard = h("section", { class: "card chart-card", "aria-label": "Cost per day" }, h("h2", null, "Cost per day (USD)"));
  charts.append(tokensCard, costCard);
  if (top.length) {
    lineChart(tokensCard, xs, top, series((r) => r.input_tokens + r.output_tokens), (v) => fmtInt(v));
    lineChart(costCard, xs, top, series((r) => r.cost_pusd / 1e12), (v) => `$${v.toFixed(4)}`);
  } else {
    tokensCard.append(h("p", { class: "empty" }, "No usage in this range."));
    costCard.append(h("p", { class: "empty" }, "No usage in this range."));
  }
  const head = ["Day", "Key", "Caller", "Provider", "Model", "Requests", "Input tokens", "Output tokens", "Cache read", "Cache write", "Reasoning", "Cost USD"];
  const sorted = [...rows].sort((a, b) => b.period.localeCompare(a.period) || b.cost_pusd - a.cost_pusd);
  const cells = (r: UsageRow) => [r.period, r.key ?? "", r.caller, r.provider, r.model, r.requests, r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_creation_tokens, r.reasoning_tokens, r.cost_usd];
  const exportBtn = h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: () => {
        const csv = [head, ...sorted.map(cells)].map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
        const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
        const a = h("a", { href: url, download: `usage-${from}-to-${to}.csv`, class: "hidden" });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      },
    },
    "Export CSV",
  );
  const tot = sum(rows);
  el.append(
    h(
      "section",
      { class: "card" },
      h("div", { class: "row spread" }, h("p", null, `${fmtInt(tot.requests)} requests, ${fmtInt(tot.tokens)} tokens, ${fmtUsd(tot.cost)} from ${from} to ${to}.`), exportBtn),
      table(
        "Usage per day, key, caller and model",
        head,
        // Key callers are `key:<sha256>`: shortened here, whole in the CSV.
        sorted.map((r) => cells(r).map((c, i) => (i === 2 && r.caller.startsWith("key:") ? `${r.caller.slice(0, 16)}…` : String(c)))),
        { "data-table": "usage" },
      ),
    ),
  );
}

// --- audit -------------------------------------------------------------------------------------------

/** A diff value as JSON; absent is a dash. Secrets arrive already redacted by the API. */
function shown(v: unknown): string {
  return v === null || v === undefined ? "—" : JSON.stringify(v);
}

async function auditPage(el: HTMLElement, ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const fKind = field("kind", "Object kind", select([["", "any"], ["provider", "provider"], ["route", "route"], ["key", "key"], ["price", "price"]], q.get("kind") ?? ""));
  const fName = field("name", "Object name", input("text", q.get("name") ?? ""));
  const fActor = field("actor", "Actor", input("text", q.get("actor") ?? "", { placeholder: "admin:1a2b3c4d" }));
  const fSince = field("since", "Since (UTC)", input("datetime-local", q.get("since")?.replace(/Z$/, "") ?? ""));
  const fUntil = field("until", "Until (UTC)", input("datetime-local", q.get("until")?.replace(/Z$/, "") ?? ""));
  const fields = [fKind, fName, fActor, fSince, fUntil];
  const banner = h("div", { class: "banner error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "card filters", "data-form": "audit" },
    banner,
    h("div", { class: "row" }, ...fields.map((f) => f.wrap), h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Filter"))),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const f of fields) {
      let v = f.control.value.trim();
      if (!v) continue;
      if (f === fSince || f === fUntil) v = `${v.length === 16 ? `${v}:00` : v}Z`;
      p.set(f.name, v);
    }
    location.hash = `#/audit?${p}`;
  });
  el.append(form);
  const params = new URLSearchParams();
  for (const k of ["kind", "name", "actor", "since", "until"]) if (q.get(k)) params.set(k, q.get(k) as string);
  params.set("limit", "100");
  const list = h("section", { class: "card" });
  el.append(list);
  let items: any[] = [];
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  const draw = () => {
    clear(list);
    list.append(
      table(
        "Changes, newest first",
        ["Time", "Actor", "Action", "Via", "Object", "Version", "Changes", "Request"],
        items.map((a) => [
          fmtTime(a.time),
          a.actor,
          a.action,
          a.via ?? "",
          `${a.kind} ${a.name}`,
          `${a.version_before ?? "—"} → ${a.version_after ?? "—"}`,
          h(
            "ul",
            { class: "plain diff" },
            ...Object.entries(a.diff ?? {}).map(([k, d]: [string, any]) =>
              h("li", null, `${k}: ${shown(d?.before)} → ${shown(d?.after)}`),
            ),
          ),
          a.request_id ?? "",
        ]),
        { "data-table": "audit" },
      ),
      more,
    );
  };
  let cursor: string | null = null;
  const load = async () => {
    if (cursor) params.set("cursor", cursor);
    try {
      const r = await call<{ items: any[]; next_cursor: string | null }>("GET", `/v1/audit?${params}`);
      items = items.concat(r.data.items);
      cursor = r.data.next_cursor;
      more.hidden = !cursor;
      draw();
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && e.code === "not_found" && !items.length) {
        clear(list);
        list.append(h("p", { class: "banner" }, "This control plane has no audit trail (GET /v1/audit is not there)."));
        return;
      }
      showError(fields, banner, e);
    }
  };
  more.addEventListener("click", () => void load());
  await load();
}

/** The pages in navigation order. */
export const PAGES: Record<string, Page> = {
  overview: { title: "Overview", render: overview },
  providers: { title: "Providers", render: providers },
  routes: { title: "Routes", render: routes },
  prices: { title: "Prices", render: prices },
  keys: { title: "Keys", render: keyPage() },
  usage: { title: "Usage", render: usagePage },
  audit: { title: "Audit", render: auditPage },
};
