// Builds the device addon (native/build/Release/latent_sft_ort.node) at install time with node-gyp.
//
// 1. ONNX Runtime 1.29 C/C++ headers (ORT_API_VERSION 29): taken from the npm package
//    com.github.asus4.onnxruntime@0.4.9 (a ~150 MB tarball of mobile/desktop binaries; we keep only
//    its 1.1 MB Headers folder). Fetched once per machine with `npm pack` into a throw-away folder and
//    cached, extracted, in $XDG_CACHE_HOME/latent-sft (default ~/.cache/latent-sft). ORT_HEADERS_DIR
//    points at a folder of headers instead (machines without registry access).
// 2. libonnxruntime.so.1 from onnxruntime-node 1.29.0 is linked, with an rpath relative to the addon
//    ($ORIGIN/../../../node_modules/onnxruntime-node/...), so the addon and onnxruntime-node's binding
//    share one ORT in the process.
// 3. The CUDA kernels (src/kernels/*.cu) joined and written as a C++ string to gen/fused_kernels.gen.h
//    (embed-kernels.mjs; no CUDA toolkit needed: NVRTC compiles them at run time).
// 4. node-gyp rebuild in native/, against the running node's own headers when they are installed
//    (<prefix>/include/node), else node-gyp's download.
//
// Run by the package's `install` script. A stamp (hash of sources, headers, ORT library and node ABI)
// skips the rebuild when nothing changed; --force rebuilds, --force-headers also refetches headers.
// Plain Node (no tsx): it runs before anything else in the workspace is built.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, cpSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATED_HEADER, writeGeneratedHeader } from './embed-kernels.mjs';

const HEADERS_PACKAGE = 'com.github.asus4.onnxruntime@0.4.9';
const HEADERS_IN_TARBALL = 'package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64_x86_64-simulator/onnxruntime.framework/Headers';
const ORT_API_VERSION = 29;

const nativeDir = dirname(fileURLToPath(import.meta.url));
const pkgDir = dirname(nativeDir);
const require = createRequire(join(pkgDir, 'package.json'));

function fail(msg) {
  console.error(`@latent-sft/runtime native build: ${msg}`);
  process.exit(1);
}

function log(msg) {
  console.error(`@latent-sft/runtime native build: ${msg}`);
}

/** The API version a header folder declares, or undefined when it has no onnxruntime_c_api.h. */
function headerApiVersion(dir) {
  const file = join(dir, 'onnxruntime_c_api.h');
  if (!existsSync(file)) return undefined;
  const m = /#define ORT_API_VERSION (\d+)/.exec(readFileSync(file, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

/** Headers folder: ORT_HEADERS_DIR, else the per-machine cache (filled from the registry once). */
function ensureHeaders(force) {
  const override = process.env.ORT_HEADERS_DIR;
  if (override) {
    const v = headerApiVersion(override);
    if (v !== ORT_API_VERSION) fail(`ORT_HEADERS_DIR=${override} has ORT_API_VERSION ${v ?? 'none'}, need ${ORT_API_VERSION}`);
    return override;
  }
  const cacheRoot = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'latent-sft');
  const cached = join(cacheRoot, `onnxruntime-headers-${HEADERS_PACKAGE.replace('@', '-')}`);
  if (!force && headerApiVersion(cached) === ORT_API_VERSION) return cached;
  const t0 = Date.now();
  mkdirSync(cacheRoot, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'latent-sft-ort-headers-'));
  try {
    log(`fetching ${HEADERS_PACKAGE} (~150 MB, once per machine) for the ONNX Runtime headers`);
    // A private npm cache folder, so the 150 MB tarball does not also stay in ~/.npm.
    const out = execFileSync('npm', ['pack', HEADERS_PACKAGE, '--pack-destination', work, '--cache', join(work, 'npm-cache'), '--silent'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const tgz = join(work, out.trim().split('\n').pop());
    execFileSync('tar', ['xzf', tgz, '-C', work, '--wildcards', `${HEADERS_IN_TARBALL}/*`], { stdio: 'inherit' });
    const extracted = join(work, HEADERS_IN_TARBALL);
    const v = headerApiVersion(extracted);
    if (v !== ORT_API_VERSION) fail(`${HEADERS_PACKAGE} headers declare ORT_API_VERSION ${v ?? 'none'}, need ${ORT_API_VERSION}`);
    const staged = `${cached}.tmp-${process.pid}`;
    rmSync(staged, { recursive: true, force: true });
    cpSync(extracted, staged, { recursive: true });
    rmSync(cached, { recursive: true, force: true });
    renameSync(staged, cached);
    log(`headers cached in ${cached} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return cached;
  } catch (e) {
    fail(
      `could not fetch ${HEADERS_PACKAGE} from the npm registry (${e.message.split('\n')[0]}); ` +
        'set ORT_HEADERS_DIR to a folder holding the ONNX Runtime 1.29 headers',
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function main() {
  const forceHeaders = process.argv.includes('--force-headers');
  const force = forceHeaders || process.argv.includes('--force');
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    log(`skipped on ${process.platform}-${process.arch} (the device addon is built for linux-x64 only)`);
    return;
  }
  const t0 = Date.now();
  const headers = ensureHeaders(forceHeaders);
  // The path through the package's own node_modules link, so the rpath survives moving the checkout.
  const ortLinked = join(pkgDir, 'node_modules', 'onnxruntime-node');
  const ortPkg = existsSync(join(ortLinked, 'package.json')) ? ortLinked : dirname(require.resolve('onnxruntime-node/package.json'));
  const ortLib = join(ortPkg, 'bin', 'napi-v6', 'linux', 'x64');
  if (!existsSync(join(ortLib, 'libonnxruntime.so.1'))) fail(`missing ${join(ortLib, 'libonnxruntime.so.1')} (is onnxruntime-node 1.29.0 installed?)`);
  const buildDir = join(nativeDir, 'build', 'Release');
  const rpathRelative = `$$ORIGIN/${relative(buildDir, ortLib)}`;
  const rpathAbsolute = realpathSync(ortLib);
  const napiInclude = dirname(require.resolve('node-addon-api/package.json'));
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  const prefix = dirname(dirname(process.execPath));
  const args = [
    gyp,
    'rebuild',
    `--directory=${nativeDir}`,
    '-j',
    '2',
    '--loglevel=warn',
    `--ort_include_dir=${headers}`,
    `--ort_lib_dir=${ortLib}`,
    `--napi_include_dir=${napiInclude}`,
    `--ort_rpath=${rpathRelative}:${rpathAbsolute}`,
  ];
  if (existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
  const addon = join(buildDir, 'latent_sft_ort.node');
  const stampFile = join(nativeDir, 'build', 'stamp.txt');
  writeGeneratedHeader(nativeDir);
  const hash = createHash('sha256');
  const sources = readdirSync(join(nativeDir, 'src'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(nativeDir, join(e.parentPath ?? e.path, e.name)))
    .sort();
  for (const f of [...sources, GENERATED_HEADER, 'binding.gyp', 'install.mjs', 'embed-kernels.mjs']) {
    hash.update(`${f}\n`);
    hash.update(readFileSync(join(nativeDir, f)));
  }
  hash.update(readFileSync(join(headers, 'onnxruntime_cxx_api.h')));
  hash.update([rpathAbsolute, process.versions.modules, process.versions.napi, process.execPath].join('\n'));
  const stamp = hash.digest('hex');
  if (!force && existsSync(addon) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
    log('up to date (node native/install.mjs --force rebuilds)');
    return;
  }
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) fail(`node-gyp rebuild failed (exit ${r.status ?? r.signal})`);
  writeFileSync(stampFile, stamp);
  log(`built native/build/Release/latent_sft_ort.node in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main();
