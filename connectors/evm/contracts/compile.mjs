// Compiles TestToken.sol with solc-js (standard JSON) into TestToken.json: the ABI,
// the creation bytecode, and the versions that made them. Run by build.sh.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.argv[2];
const require = createRequire(join(modules, "noop.js"));
const solc = require("solc");
const openzeppelin = require("@openzeppelin/contracts/package.json").version;

const input = {
  language: "Solidity",
  sources: { "TestToken.sol": { content: readFileSync(join(here, "TestToken.sol"), "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "TestToken.sol": { TestToken: ["abi", "evm.bytecode.object"] } },
  },
};
const findImports = (path) => {
  try {
    return { contents: readFileSync(require.resolve(path), "utf8") };
  } catch (error) {
    return { error: String(error) };
  }
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors ?? []).filter((e) => e.severity === "error");
for (const e of output.errors ?? []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const contract = output.contracts["TestToken.sol"].TestToken;
const artifact = {
  contractName: "TestToken",
  compiler: { solc: solc.version(), settings: { optimizer: input.settings.optimizer, evmVersion: "cancun" } },
  openzeppelin,
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
};
writeFileSync(join(here, "TestToken.json"), JSON.stringify(artifact, null, 2) + "\n");
console.error(`TestToken.json: solc ${solc.version()}, @openzeppelin/contracts ${openzeppelin}`);
