/** The commands that describe podnet itself: providers, bundled scenarios, the scenario schema. */
import type { Command } from "commander";
import { scenarioJsonSchema } from "@podnet/cluster";
import { getProvider, providerNames } from "@podnet/providers";
import { bundledScenarios, readScenario } from "../files.js";
import { print, table } from "../format.js";
import { jsonOption } from "../options.js";

export function infoCommands(cli: Command): void {
  cli
    .command("providers")
    .description("list the network providers")
    .addOption(jsonOption(""))
    .addHelpText("after", "\nExample:\n  podnet providers --json")
    .action((opts: { json?: boolean }) => {
      const list = providerNames.map((name) => {
        const p = getProvider(name);
        return {
          name,
          description: p.description,
          podAddressing: p.podAddressing,
          crossNodeSource: p.crossNodeSource,
          layer2Adjacency: p.underlay.layer2Adjacency,
          overheadBytes: p.overheadBytes,
          podMtuAt1500: p.podMtu(1500),
        };
      });
      print(Boolean(opts.json), list, () =>
        table(
          ["provider", "pod addresses", "overhead", "pod MTU", "needs L2", "description"],
          list.map((p) => [
            p.name,
            p.podAddressing,
            `${p.overheadBytes} B`,
            p.podMtuAt1500,
            p.layer2Adjacency ? "yes" : "no",
            p.description,
          ]),
        ),
      );
    });

  cli
    .command("scenarios")
    .description("list the bundled scenarios, which every command accepts by name")
    .addOption(jsonOption(""))
    .addHelpText("after", "\nExample:\n  podnet scenarios\n  podnet compare two-nodes")
    .action((opts: { json?: boolean }) => {
      const list = bundledScenarios().map(({ name, file }) => {
        const s = readScenario(file);
        const nodes = s.nodes.length + (s.generate?.nodes ?? 0);
        const pods = s.pods.length + (s.generate ? s.generate.nodes * s.generate.podsPerNode : 0);
        return { name, description: s.description, nodes, pods, file };
      });
      print(Boolean(opts.json), list, () =>
        table(
          ["scenario", "nodes", "pods", "description"],
          list.map((s) => [
            s.name,
            s.nodes.toLocaleString("en-US"),
            s.pods.toLocaleString("en-US"),
            s.description,
          ]),
        ),
      );
    });

  cli
    .command("schema")
    .description("print the JSON Schema of scenario files, for editors")
    .addOption(jsonOption("the schema is JSON either way"))
    .addHelpText("after", "\nExample:\n  podnet schema > podnet-scenario.schema.json")
    .action(() => print(true, scenarioJsonSchema(), () => ""));
}
