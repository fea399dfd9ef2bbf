// Vite build of the admin console (docs/adr/0022-admin-console.md). The output in dist/ is
// committed and embedded in the control-plane binary by build.rs; `./dev ui` rebuilds it and
// tests/e2e/test_console.py checks that a rebuild reproduces the committed bytes.
import { defineConfig } from "vite";

export default defineConfig({
  // Served by the control plane under /ui/.
  base: "/ui/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The entry is the only chunk: no preload polyfill (it would be an extra inline-free script anyway).
    modulePreload: { polyfill: false },
    // Every asset a separate file: the Content-Security-Policy allows no data: scripts or styles.
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
    target: "es2022",
  },
});
