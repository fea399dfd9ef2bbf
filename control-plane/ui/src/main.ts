// The admin console: sign-in, navigation (hash routes) and the page shell.

import "uplot/dist/uPlot.min.css";
import "./style.css";
import { Access, ApiError, call, setToken, setUnauthorizedHandler, token } from "./api";
import { clear, field, h, input } from "./dom";
import { Ctx, PAGES } from "./pages";

const app = document.getElementById("app") as HTMLElement;
let access: Access | null = null;
let signInMessage = "";

setUnauthorizedHandler((message) => {
  setToken(null);
  access = null;
  signInMessage = `Signed out: the control plane refused the token (${message}).`;
  render();
});

function signIn(): void {
  clear(app);
  const tok = input("password", "", { autocomplete: "current-password", required: true, spellcheck: false });
  const f = field("token", "Admin or read-only token", tok, "Kept in this tab only (sessionStorage), sent as Authorization: Bearer.");
  const banner = h("p", { class: "banner error", role: "alert", hidden: !signInMessage }, signInMessage);
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "AI gateway console"),
    banner,
    f.wrap,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = tok.value.trim();
    try {
      const r = await call<{ access: Access }>("GET", "/v1/whoami", undefined, {}, t);
      setToken(t);
      access = r.data.access;
      signInMessage = "";
      if (!location.hash || location.hash === "#/") location.hash = "#/overview";
      render();
    } catch (e) {
      banner.textContent = e instanceof ApiError && e.status === 401 ? "That token is not valid." : String(e);
      banner.hidden = false;
    }
  });
  app.append(h("main", { class: "signin-main" }, form));
  tok.focus();
}

function shell(): { main: HTMLElement } {
  clear(app);
  const current = (location.hash.replace(/^#\//, "").split("?")[0] || "overview") as string;
  const nav = h(
    "nav",
    { class: "nav", "aria-label": "Console sections" },
    h(
      "ul",
      null,
      ...Object.entries(PAGES).map(([id, p]) =>
        h("li", null, h("a", { href: `#/${id}`, "aria-current": id === current ? "page" : null }, p.title)),
      ),
    ),
  );
  const role =
    access === "admin"
      ? h("span", { class: "badge admin" }, "admin")
      : h("span", { class: "badge ro" }, "read-only");
  const out = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      onclick: () => {
        setToken(null);
        access = null;
        signInMessage = "";
        render();
      },
    },
    "Sign out",
  );
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/overview" }, "AI gateway"),
    nav,
    h("div", { class: "who" }, role, out),
  );
  const main = h("main", { id: "main", tabindex: "-1" });
  app.append(header);
  if (access === "read_only") {
    app.append(
      h(
        "p",
        { class: "banner readonly", role: "status" },
        "Read-only session: you can see everything, but every change is disabled (and the API refuses it).",
      ),
    );
  }
  app.append(main);
  return { main };
}

async function render(): Promise<void> {
  if (!token()) {
    signIn();
    return;
  }
  if (!access) {
    try {
      access = (await call<{ access: Access }>("GET", "/v1/whoami")).data.access;
    } catch {
      if (!token()) return; // the 401 handler signed out and rendered
      access = "read_only";
    }
  }
  const { main } = shell();
  const [id, query] = (location.hash.replace(/^#\//, "") || "overview").split("?");
  const page = PAGES[id] ?? PAGES.overview;
  document.title = `${page.title} · AI gateway console`;
  const ctx: Ctx = { admin: access === "admin", query: new URLSearchParams(query ?? ""), rerender: render };
  main.append(h("h1", null, page.title));
  const body = h("div", { class: "page", "aria-busy": "true" });
  main.append(body);
  try {
    await page.render(body, ctx);
  } catch (e) {
    if (!token()) return;
    body.append(h("p", { class: "banner error", role: "alert" }, `Could not load this page: ${e instanceof Error ? e.message : e}`));
  }
  body.setAttribute("aria-busy", "false");
}

window.addEventListener("hashchange", () => void render());
void render();
