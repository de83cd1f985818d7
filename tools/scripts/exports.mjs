#!/usr/bin/env node
// The public-API rule of a package (docs/architecture.md, Conventions): its `src/index.ts` exports a name
// only if
//   (a) another project (packages/*, apps/*, tools/*: any of its source, test or bench files) imports it
//       from the package, or
//   (b) the declared signature of another kept export refers to it (parameter, return, property and
//       type-parameter types, extends/implements, `typeof`), so the public API stays closed under its
//       types: a user can name the type of everything they call.
// (a) is syntactic (import/export declarations, `import('…').X` types, namespace imports' `ns.X`).
// (b) uses the TypeScript checker (one program over all packages' indexes): written annotations are
// followed as written (aliases keep their names); where a signature has none (an inferred return type,
// an unannotated `const`), the inferred type is walked instead. Private class members and function
// bodies are not part of a signature. Types the package declares but does not export are looked
// through, so an exported type reached via an internal one still counts.
// Run by boundaries.mjs for every project under packages/; `node tools/scripts/exports.mjs [root]`
// checks every package of the workspace at root (default: the current folder).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const GROUPS = ['packages', 'apps', 'tools'];
/** typescript, loaded on a cache miss only (it is most of a cached run's time otherwise). */
let ts;

function* sourceFiles(dir) {
  for (const e of readdirSync(dir).sort()) {
    if (e === 'node_modules' || e === 'dist' || e === 'test-results' || e.startsWith('.')) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* sourceFiles(p);
    else if (/\.(ts|mts|tsx|mjs|js)$/.test(e)) yield p;
  }
}

/** name → folder of every workspace project (packages/*, apps/*, tools/* with a package.json). */
function workspaceProjects(root) {
  const out = new Map();
  for (const group of GROUPS) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir).sort()) {
      const file = join(dir, d, 'package.json');
      if (existsSync(file)) out.set(JSON.parse(readFileSync(file, 'utf8')).name, join(dir, d));
    }
  }
  return out;
}

/**
 * For each workspace package name, the names other projects import from its main entry: a Set, or
 * 'all' when some file takes the whole module in a way that cannot be narrowed (`export *`, a dynamic
 * import kept whole, a namespace passed on).
 */
function importedNames(root, projects = workspaceProjects(root)) {
  const used = new Map([...projects.keys()].map((n) => [n, new Set()]));
  for (const [owner, dir] of projects) {
    for (const file of sourceFiles(dir)) {
      const text = readFileSync(file, 'utf8');
      if (!text.includes('@latent-sft/')) continue;
      const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
      for (const [name, set] of used) {
        if (name === owner || set === 'all' || !text.includes(name)) continue;
        if (collectImports(sf, name, set) === 'all') used.set(name, 'all');
      }
    }
  }
  return used;
}

function collectImports(sf, pkgName, used) {
  const isPkg = (spec) => spec !== undefined && ts.isStringLiteralLike(spec) && spec.text === pkgName;
  const namespaces = new Set();
  let all = false;
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && isPkg(node.moduleSpecifier)) {
      const c = node.importClause;
      if (c?.name) used.add('default');
      const b = c?.namedBindings;
      if (b && ts.isNamespaceImport(b)) namespaces.add(b.name.text);
      else if (b) for (const e of b.elements) used.add((e.propertyName ?? e.name).text);
    } else if (ts.isExportDeclaration(node) && isPkg(node.moduleSpecifier)) {
      const c = node.exportClause;
      if (c === undefined) all = true;
      else if (ts.isNamespaceExport(c)) all = true;
      else for (const e of c.elements) used.add((e.propertyName ?? e.name).text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && isPkg(node.argument.literal)) {
      if (node.qualifier) used.add(ts.isIdentifier(node.qualifier) ? node.qualifier.text : leftmost(node.qualifier));
      else all = true;
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && isPkg(node.arguments[0])) {
      // `const { a, b } = await import('pkg')` names what it takes; any other use takes the whole module.
      const decl = ts.isAwaitExpression(node.parent) ? node.parent.parent : undefined;
      if (decl && ts.isVariableDeclaration(decl) && ts.isObjectBindingPattern(decl.name))
        for (const e of decl.name.elements) used.add((e.propertyName ?? e.name).getText());
      else all = true;
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  if (namespaces.size > 0) {
    const visitNs = (node) => {
      if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && namespaces.has(node.expression.text)) used.add(node.name.text);
      else if (ts.isQualifiedName(node) && ts.isIdentifier(node.left) && namespaces.has(node.left.text)) used.add(node.right.text);
      else if (ts.isIdentifier(node) && namespaces.has(node.text) && !ts.isNamespaceImport(node.parent))
        all = true; // passed on whole
      else ts.forEachChild(node, visitNs);
    };
    visitNs(sf);
  }
  return all ? 'all' : used;
}

function leftmost(q) {
  return ts.isIdentifier(q) ? q.text : leftmost(q.left);
}

function compilerOptions(root) {
  const file = join(root, 'tsconfig.base.json');
  const raw = existsSync(file) ? ts.readConfigFile(file, ts.sys.readFile).config : { compilerOptions: {} };
  const { options } = ts.parseJsonConfigFileContent(raw, ts.sys, root);
  // Only the package's own types matter; leaving @types/* out keeps the program small (unresolved
  // node: modules become `any`, which names nothing of ours).
  return { ...options, noEmit: true, types: [], skipLibCheck: true };
}

/**
 * The exports of `index` (a package's src/index.ts, a root of `program`) that break the rule, sorted:
 * names that `usedNames` (importedNames() of the package) lacks and no kept export's signature reaches.
 */
function unusedExports(program, index, usedNames) {
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(index);
  const moduleSymbol = sf && checker.getSymbolAtLocation(sf);
  if (moduleSymbol === undefined || usedNames === 'all') return [];

  const resolveAlias = (s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  /** original symbol → the names the index exports it under */
  const exported = new Map();
  const names = [];
  for (const s of checker.getExportsOfModule(moduleSymbol)) {
    const name = s.getName();
    const target = resolveAlias(s);
    names.push(name);
    if (!exported.has(target)) exported.set(target, []);
    exported.get(target).push(name);
  }

  const srcDir = dirname(index) + sep;
  const ownDeclaration = (d) => resolve(d.getSourceFile().fileName).startsWith(srcDir);
  const declarationKinds = new Set([
    ts.SyntaxKind.InterfaceDeclaration,
    ts.SyntaxKind.TypeAliasDeclaration,
    ts.SyntaxKind.ClassDeclaration,
    ts.SyntaxKind.FunctionDeclaration,
    ts.SyntaxKind.VariableDeclaration,
    ts.SyntaxKind.EnumDeclaration,
  ]);
  const needed = new Set();
  const done = new Set();
  const queue = [];
  const mark = (symbol) => {
    if (symbol === undefined) return;
    const s = resolveAlias(symbol);
    if (done.has(s)) return;
    const as = exported.get(s);
    if (as !== undefined) for (const n of as) needed.add(n);
    else if (!(s.declarations ?? []).some((d) => ownDeclaration(d) && declarationKinds.has(d.kind))) return;
    done.add(s);
    queue.push(s);
  };
  const markAt = (node) => {
    const at = ts.isQualifiedName(node) ? node.right : ts.isPropertyAccessExpression(node) ? node.name : node;
    mark(checker.getSymbolAtLocation(at));
  };

  const isPrivate = (m) => (m.name !== undefined && ts.isPrivateIdentifier(m.name)) || (ts.getCombinedModifierFlags(m) & ts.ModifierFlags.Private) !== 0;
  const seenTypes = new Set();
  const walkType = (t, depth = 0) => {
    if (t === undefined || depth > 8 || seenTypes.has(t)) return;
    seenTypes.add(t);
    if (t.aliasSymbol) {
      mark(t.aliasSymbol);
      for (const a of t.aliasTypeArguments ?? []) walkType(a, depth + 1);
      return;
    }
    if (t.isUnionOrIntersection()) {
      for (const u of t.types) walkType(u, depth + 1);
      return;
    }
    if (!(t.flags & ts.TypeFlags.Object)) return;
    const of = t.objectFlags;
    if (of & ts.ObjectFlags.Reference) {
      mark(t.target.symbol);
      for (const a of checker.getTypeArguments(t)) walkType(a, depth + 1);
      return;
    }
    const s = t.symbol;
    if (of & (ts.ObjectFlags.Class | ts.ObjectFlags.Interface)) return mark(s);
    if (s && s.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Function | ts.SymbolFlags.Enum | ts.SymbolFlags.ValueModule) && !s.getName().startsWith('__'))
      return mark(s); // `typeof someDeclaration`
    for (const p of checker.getPropertiesOfType(t)) {
      const d = p.valueDeclaration;
      if (d && (d.type !== undefined || ts.isFunctionLike(d)) && !ts.isParameter(d)) visit(ts.isFunctionLike(d) ? d : d.type);
      else walkType(checker.getTypeOfSymbol(p), depth + 1);
    }
    for (const sig of [...t.getCallSignatures(), ...t.getConstructSignatures()]) {
      if (sig.declaration) visit(sig.declaration);
      else {
        for (const p of sig.getParameters()) walkType(checker.getTypeOfSymbol(p), depth + 1);
        walkType(sig.getReturnType(), depth + 1);
      }
    }
    for (const info of checker.getIndexInfosOfType(t)) walkType(info.type, depth + 1);
  };
  const typeOrInferred = (typeNode, at) => (typeNode !== undefined ? visit(typeNode) : walkType(checker.getTypeAtLocation(at)));
  const visitSignature = (fn) => {
    for (const tp of fn.typeParameters ?? []) visit(tp);
    for (const p of fn.parameters) typeOrInferred(p.type, p);
    if (fn.type !== undefined) visit(fn.type);
    else if (!ts.isConstructorDeclaration(fn) && !ts.isSetAccessorDeclaration(fn) && fn.body !== undefined) {
      const sig = checker.getSignatureFromDeclaration(fn);
      if (sig) walkType(checker.getReturnTypeOfSignature(sig));
    }
  };
  const visitClass = (c) => {
    for (const tp of c.typeParameters ?? []) visit(tp);
    for (const h of c.heritageClauses ?? []) for (const e of h.types) visit(e);
    for (const m of c.members) {
      if (isPrivate(m) || ts.isClassStaticBlockDeclaration(m) || ts.isSemicolonClassElement(m)) continue;
      if (ts.isPropertyDeclaration(m)) typeOrInferred(m.type, m.name);
      else visit(m);
    }
  };
  function visit(node) {
    if (ts.isTypeReferenceNode(node)) {
      markAt(node.typeName);
      for (const a of node.typeArguments ?? []) visit(a);
    } else if (ts.isExpressionWithTypeArguments(node)) {
      markAt(node.expression);
      for (const a of node.typeArguments ?? []) visit(a);
    } else if (ts.isTypeQueryNode(node)) markAt(node.exprName);
    else if (ts.isImportTypeNode(node)) walkType(checker.getTypeFromTypeNode(node));
    else if (ts.isClassLike(node)) visitClass(node);
    else if (ts.isFunctionLike(node)) visitSignature(node);
    else if (ts.isVariableDeclaration(node)) typeOrInferred(node.type, node.name);
    else if (ts.isEnumDeclaration(node) || ts.isExpression(node) || ts.isBlock(node)) return;
    else ts.forEachChild(node, visit);
  }

  for (const [s, as] of exported) if (as.some((n) => usedNames.has(n))) mark(s);
  while (queue.length > 0) for (const d of queue.shift().declarations ?? []) visit(d);
  return names.filter((n) => !needed.has(n) && !usedNames.has(n)).sort();
}

/**
 * Lint lines for every package of the workspace at `root`: Map(package folder → lines). One program
 * for all packages' indexes; the result is cached under node_modules/.cache, keyed by a hash of every
 * project's sources, so the per-project lint runs of one `nx run-many` share one analysis.
 */
export function exportProblems(root) {
  const projects = workspaceProjects(root);
  const hash = createHash('sha256').update(readFileSync(fileURLToPath(import.meta.url)));
  for (const f of [join(root, 'tsconfig.base.json'), ...[...projects.values()].flatMap((d) => [join(d, 'package.json'), ...sourceFiles(d)])])
    if (existsSync(f))
      hash
        .update(`${relative(root, f)}\0`)
        .update(readFileSync(f))
        .update('\0');
  const cacheDir = join(root, 'node_modules', '.cache', 'latent-sft-exports');
  const cacheFile = join(cacheDir, `${hash.digest('hex').slice(0, 32)}.json`);
  if (existsSync(cacheFile)) return new Map(JSON.parse(readFileSync(cacheFile, 'utf8')));

  ts ??= createRequire(import.meta.url)('typescript');
  const used = importedNames(root, projects);
  const packages = [...projects].filter(([, d]) => relative(root, d).startsWith(`packages${sep}`) && existsSync(join(d, 'src', 'index.ts')));
  const program = ts.createProgram({ rootNames: packages.map(([, d]) => join(d, 'src', 'index.ts')), options: compilerOptions(root) });
  const out = new Map();
  for (const [name, dir] of packages) {
    const index = join(dir, 'src', 'index.ts');
    const file = relative(root, index);
    out.set(
      dir,
      unusedExports(program, index, used.get(name)).map(
        (n) => `${file}: '${n}' is exported but no other project uses it and no exported signature refers to it`,
      ),
    );
  }
  if (existsSync(join(root, 'node_modules'))) {
    mkdirSync(cacheDir, { recursive: true });
    for (const old of readdirSync(cacheDir)) rmSync(join(cacheDir, old), { force: true });
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify([...out]));
    renameSync(tmp, cacheFile);
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? '.');
  const lines = [...exportProblems(root).values()].flat();
  for (const l of lines) process.stdout.write(`${l}\n`);
  process.exit(lines.length > 0 ? 1 : 0);
}
