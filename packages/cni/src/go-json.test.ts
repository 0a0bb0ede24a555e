import { describe, expect, it } from "vitest";
import { goUnmarshal, type GoType } from "./go-json.js";

const ip: GoType = {
  kind: "text",
  goType: "net.IP",
  parse: (text) => {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(text)) throw new Error(`invalid IP address: ${text}`);
    return text;
  },
};
const conf: GoType = {
  kind: "struct",
  name: "Conf",
  goType: "main.Conf",
  fields: {
    dataDir: { kind: "string" },
    mtu: { kind: "int" },
    on: { kind: "bool" },
    inner: { kind: "struct", name: "Inner", goType: "main.Inner", fields: { gw: ip } },
    list: {
      kind: "slice",
      goType: "[]main.Inner",
      of: { kind: "struct", name: "Inner", goType: "main.Inner", fields: { gw: ip } },
    },
  },
};

describe("Go's json.Unmarshal, as host-local's config decoding needs it", () => {
  it("decodes by field name, ignoring case and unknown keys, and leaves nulls unset", () => {
    expect(goUnmarshal({ DATADIR: "/d", mtu: 1450, on: true, other: 1, inner: null }, conf)).toEqual({
      dataDir: "/d",
      mtu: 1450,
      on: true,
    });
  });

  it("names the struct, the field path and the Go type of the first key of the wrong kind", () => {
    expect(() => goUnmarshal({ dataDir: 5, on: "yes" }, conf)).toThrow(
      "json: cannot unmarshal number into Go struct field Conf.dataDir of type string",
    );
    expect(() => goUnmarshal({ list: [{ gw: 7 }] }, conf)).toThrow(
      "json: cannot unmarshal number into Go struct field Inner.list.gw of type net.IP",
    );
    expect(() => goUnmarshal({ mtu: 1.5 }, conf)).toThrow(
      "json: cannot unmarshal number 1.5 into Go struct field Conf.mtu of type int",
    );
    expect(() => goUnmarshal([], conf)).toThrow(
      "json: cannot unmarshal array into Go value of type main.Conf",
    );
  });

  it("lets a type's own error stop decoding and win over an earlier wrong kind", () => {
    expect(() => goUnmarshal({ dataDir: 5, inner: { gw: "zz" } }, conf)).toThrow("invalid IP address: zz");
  });
});
