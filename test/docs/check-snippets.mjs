// Type-checks every TypeScript block of README.md and docs/*.md, as pasted,
// inside a consumer app that has the packed package installed (test/consumers/run.sh
// builds two: an ES module app laid out as `nest new` makes it today, and a
// CommonJS one as Nest 11's `nest new` made it).
//
// Usage: node test/docs/check-snippets.mjs <app-dir>
//
// What counts as a block, and how it is compiled (docs/development.md says the same):
// - A block fenced as ```ts (or ```typescript) is a whole file. If its first
//   line is a comment naming a file, `// app.module.ts` (anything may follow
//   the name), it is that file of a small app made of every such block under
//   the same heading, so the blocks may import one another (`./app.module.js`).
//   Otherwise it is a file of its own.
// - A block fenced as ```ts fragment=<context> is not a file: it is compiled
//   inside test/docs/contexts/<context>.ts, in place of the line
//   `/* fragment */`. The context declares what the fragment uses.
// - Any other word in the fence's info string is refused, so a misspelt
//   marker cannot switch a check off.
// Errors are reported at the document's line, and any error fails the check.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const CONTEXTS = path.join(here, 'contexts');
const MARKER = '/* fragment */';

/** The documents whose blocks are checked, relative to the repository. */
export function documents() {
  const docs = existsSync(path.join(repo, 'docs'))
    ? readdirSync(path.join(repo, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)
    : [];
  return ['README.md', ...docs];
}

const slug = (text) => text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'top';

/**
 * The TypeScript blocks of one Markdown document: `{ doc, line, info, lines, heading }`,
 * where `line` is the document's line number of the block's first line of code.
 */
export function extractBlocks(doc, text) {
  const blocks = [];
  const lines = text.split('\n');
  let heading = 'top';
  let open = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (open === null) {
      const fence = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)(.*)$/.exec(line);
      if (fence) {
        const [, indent, marks, lang, rest] = fence;
        open = { indent: indent.length, marks, lang: lang.toLowerCase(), info: rest.trim(), line: i + 2, lines: [], heading };
      } else {
        const title = /^#{1,6}\s+(.*)$/.exec(line);
        if (title) heading = slug(title[1]);
      }
      continue;
    }
    const close = new RegExp(`^\\s*${open.marks[0] === '`' ? '`' : '~'}{${open.marks.length},}\\s*$`).exec(line);
    if (close) {
      if (open.lang === 'ts' || open.lang === 'typescript') {
        blocks.push({ doc, line: open.line, info: open.info, lines: open.lines, heading: open.heading });
      }
      open = null;
      continue;
    }
    // Code inside a list item is indented like the fence; take the indentation off.
    open.lines.push(line.slice(Math.min(open.indent, line.length - line.trimStart().length)));
  }
  if (open !== null) throw new Error(`${doc}:${open.line - 1}: a code block is never closed`);
  return blocks;
}

function parseInfo(block) {
  const attributes = {};
  for (const word of block.info.split(/\s+/).filter(Boolean)) {
    const match = /^fragment=([a-z0-9-]+)$/.exec(word);
    if (!match) throw new Error(`${block.doc}:${block.line - 1}: unknown word "${word}" after \`\`\`ts (only fragment=<context> is known)`);
    attributes.fragment = match[1];
  }
  return attributes;
}

/**
 * Turns blocks into files under `snippets/`: `{ file, content, block, offset }`, where
 * the document's line of the file's line n is `block.line + n - 1 - offset`.
 */
export function toFiles(blocks) {
  const files = new Map();
  for (const block of blocks) {
    const { fragment } = parseInfo(block);
    const docDir = slug(block.doc.replace(/\.md$/, ''));
    let file;
    let content;
    let offset = 0;
    if (fragment !== undefined) {
      const contextPath = path.join(CONTEXTS, `${fragment}.ts`);
      if (!existsSync(contextPath)) throw new Error(`${block.doc}:${block.line - 1}: no context test/docs/contexts/${fragment}.ts`);
      const context = readFileSync(contextPath, 'utf8').split('\n');
      const at = context.findIndex((line) => line.trim() === MARKER);
      if (at < 0) throw new Error(`test/docs/contexts/${fragment}.ts has no line ${MARKER}`);
      content = [...context.slice(0, at), ...block.lines, ...context.slice(at + 1)].join('\n');
      offset = at;
      file = `${docDir}/line-${block.line}.ts`;
    } else {
      const named = /^\/\/\s*([\w.-]+\.ts)\b/.exec(block.lines[0] ?? '');
      file = named ? `${docDir}/${block.heading}/${named[1]}` : `${docDir}/line-${block.line}.ts`;
      content = block.lines.join('\n');
    }
    if (files.has(file)) {
      const other = files.get(file).block;
      throw new Error(`${block.doc}:${block.line - 1}: names the same file as line ${other.line - 1} under the same heading (${file})`);
    }
    files.set(file, { file, content: `${content}\n`, block, offset, fragment });
  }
  return [...files.values()];
}

function main() {
  const appDir = process.argv[2] && path.resolve(process.argv[2]);
  if (!appDir || !existsSync(path.join(appDir, 'tsconfig.json'))) {
    console.error('usage: node test/docs/check-snippets.mjs <app-dir with tsconfig.json and node_modules>');
    process.exit(2);
  }
  const blocks = documents().flatMap((doc) => extractBlocks(doc, readFileSync(path.join(repo, doc), 'utf8')));
  const files = toFiles(blocks);
  if (files.length === 0) throw new Error('no TypeScript blocks found: the extraction is broken');

  const root = path.join(appDir, 'src', 'snippets');
  rmSync(root, { recursive: true, force: true });
  for (const { file, content } of files) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), content);
  }

  const tsc = path.join(appDir, 'node_modules', 'typescript', 'bin', 'tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(appDir, 'tsconfig.json'), '--noEmit', '--pretty', 'false'], { cwd: appDir, encoding: 'utf8' });
  const byPath = new Map(files.map((entry) => [path.join(root, entry.file), entry]));
  const errors = [];
  for (const line of `${run.stdout}${run.stderr}`.split('\n')) {
    if (line.trim() === '') continue;
    const match = /^(.+?)\((\d+),(\d+)\): (.*)$/.exec(line);
    const entry = match && byPath.get(path.resolve(appDir, match[1]));
    if (!entry) {
      errors.push(line);
      continue;
    }
    const fileLine = Number(match[2]);
    const docLine = fileLine - 1 - entry.offset;
    if (docLine < 0 || docLine >= entry.block.lines.length) {
      errors.push(`test/docs/contexts/${entry.fragment}.ts (around ${entry.block.doc}:${entry.block.line - 1}):${fileLine}:${match[3]}: ${match[4]}`);
    } else {
      errors.push(`${entry.block.doc}:${entry.block.line + docLine}:${match[3]}: ${match[4]}`);
    }
  }
  const fragments = files.filter((entry) => entry.fragment !== undefined).length;
  const typescript = JSON.parse(readFileSync(path.join(appDir, 'node_modules', 'typescript', 'package.json'), 'utf8')).version;
  const app = JSON.parse(readFileSync(path.join(appDir, 'package.json'), 'utf8'));
  console.log(
    `${files.length} blocks (${files.length - fragments} whole files, ${fragments} fragments) from ${documents().join(', ')}, ` +
      `type-checked in ${path.basename(appDir)} ("type": "${app.type ?? 'commonjs'}", TypeScript ${typescript})`,
  );
  if (errors.length > 0 || run.status !== 0) {
    console.error(errors.length > 0 ? errors.join('\n') : `tsc exited with ${run.status}`);
    process.exit(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (error) {
    // A malformed document or marker: say where, without a stack trace.
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
