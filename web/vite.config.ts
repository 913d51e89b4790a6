import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, URL } from 'node:url'
import { gzipSync } from 'node:zlib'

import vue from '@vitejs/plugin-vue'
import AutoImport from 'unplugin-auto-import/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import Components from 'unplugin-vue-components/vite'
import { defineConfig, type Plugin } from 'vite'

// `camgrid serve` serves web/dist at /; `npm run dev` proxies the API to a running platform
// (CAMGRID_API, default http://127.0.0.1:8080) so the console can be worked on with hot reload.
const api = process.env.CAMGRID_API ?? 'http://127.0.0.1:8080'

// Every text file of the build also as .gz, so `camgrid serve` sends it compressed without
// compressing on each request.
function precompress(): Plugin {
  let outDir = 'dist'
  return {
    name: 'camgrid-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir
    },
    closeBundle() {
      for (const name of readdirSync(outDir, { recursive: true, encoding: 'utf8' })) {
        if (!/\.(js|css|html|svg)$/.test(name)) continue
        const path = join(outDir, name)
        writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: 9 }))
      }
    },
  }
}

export default defineConfig({
  plugins: [
    vue(),
    // Element Plus on demand: only the components a template uses are bundled, each with its CSS.
    // Only Element Plus's own functions (ElMessage) are auto-imported; Vue's are imported by hand.
    AutoImport({ resolvers: [ElementPlusResolver()], dts: 'src/auto-imports.d.ts' }),
    Components({ resolvers: [ElementPlusResolver()], dts: 'src/components.d.ts', dirs: [] }),
    precompress(),
  ],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  define: {
    // vue-i18n: messages are plain strings compiled at run time without eval (CSP-safe);
    // no legacy API, no devtools in production.
    __VUE_I18N_FULL_INSTALL__: false,
    __VUE_I18N_LEGACY_API__: false,
    __INTLIFY_PROD_DEVTOOLS__: false,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // .vite/manifest.json: what the first load fetches (scripts/first-load-size.mjs reads it).
    manifest: true,
    // Element Plus and Vue make one ~500 kB (180 kB gzipped) chunk; that is the budget, not a surprise.
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: { '/api': api, '/metrics': api },
  },
})
