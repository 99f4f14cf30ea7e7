import { describe, expect, it } from "vitest";
import { formFields, requestBody } from "./api";

const form = {
  Layout: "TOP_BANNER",
  Header: "Sale",
  Body: "Half price today",
  TextColor: "#222222",
  BackgroundColor: "#ffeecc",
  ImageUrl: "",
  ButtonText: "Shop",
  ButtonLink: "https://shop.example",
};

describe("in-app templates", () => {
  it("make one centred content item with its button", () => {
    expect(requestBody("INAPP", form)).toEqual({
      Layout: "TOP_BANNER",
      Content: [
        {
          HeaderConfig: { Header: "Sale", Alignment: "CENTER", TextColor: "#222222" },
          BodyConfig: { Body: "Half price today", Alignment: "CENTER", TextColor: "#222222" },
          BackgroundColor: "#ffeecc",
          ImageUrl: undefined,
          PrimaryBtn: { DefaultConfig: { Text: "Shop", ButtonAction: "LINK", Link: "https://shop.example" } },
        },
      ],
    });
  });
  it("read back into the same form", () => {
    expect(formFields("INAPP", JSON.parse(JSON.stringify(requestBody("INAPP", form))))).toEqual(form);
  });
  it("close the message from a button without a link", () => {
    const body = requestBody("INAPP", { ...form, ButtonLink: "" }) as { Content: { PrimaryBtn: unknown }[] };
    expect(body.Content[0].PrimaryBtn).toEqual({ DefaultConfig: { Text: "Shop", ButtonAction: "CLOSE", Link: undefined } });
  });
});
