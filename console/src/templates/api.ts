// The template operations per type (Create/Get/Update<Type>Template) behind one shape: the form's fields.
// Each type's body is its Pinpoint request shape; push keeps its title and body under Default; in-app holds one
// content item (header, body, colours, image, a button) and its layout.
import { api, call } from "../api/client";

export const TYPES = ["EMAIL", "SMS", "PUSH", "VOICE", "INAPP"] as const;
export type TemplateType = (typeof TYPES)[number];
export type Fields = Record<string, string>;

export const LAYOUTS = ["MIDDLE_BANNER", "TOP_BANNER", "BOTTOM_BANNER", "OVERLAYS", "MOBILE_FEED", "CAROUSEL"];

export const FIELDS: Record<TemplateType, { name: string; multiline: boolean; options?: string[] }[]> = {
  EMAIL: [
    { name: "Subject", multiline: false },
    { name: "HtmlPart", multiline: true },
    { name: "TextPart", multiline: true },
  ],
  SMS: [{ name: "Body", multiline: true }],
  PUSH: [
    { name: "Title", multiline: false },
    { name: "Body", multiline: true },
  ],
  VOICE: [
    { name: "Body", multiline: true },
    { name: "LanguageCode", multiline: false },
  ],
  // One message (Content[0]); its colours, image and one button, as the in-app SDKs draw it.
  INAPP: [
    { name: "Layout", multiline: false, options: LAYOUTS },
    { name: "Header", multiline: false },
    { name: "Body", multiline: true },
    { name: "TextColor", multiline: false },
    { name: "BackgroundColor", multiline: false },
    { name: "ImageUrl", multiline: false },
    { name: "ButtonText", multiline: false },
    { name: "ButtonLink", multiline: false },
  ],
};

/** InAppTemplateRequest from the form: one content item, centred, with a button that opens its link or closes. */
function inAppBody(fields: Fields): Record<string, unknown> {
  const color = fields.TextColor || "#000000";
  const button = fields.ButtonText
    ? { PrimaryBtn: { DefaultConfig: { Text: fields.ButtonText, ButtonAction: fields.ButtonLink ? "LINK" : "CLOSE", Link: fields.ButtonLink || undefined } } }
    : {};
  return {
    Layout: fields.Layout || "MIDDLE_BANNER",
    Content: [
      {
        HeaderConfig: fields.Header ? { Header: fields.Header, Alignment: "CENTER", TextColor: color } : undefined,
        BodyConfig: fields.Body ? { Body: fields.Body, Alignment: "CENTER", TextColor: color } : undefined,
        BackgroundColor: fields.BackgroundColor || undefined,
        ImageUrl: fields.ImageUrl || undefined,
        ...button,
      },
    ],
  };
}

interface InAppContent {
  HeaderConfig?: { Header?: string; TextColor?: string };
  BodyConfig?: { Body?: string; TextColor?: string };
  BackgroundColor?: string;
  ImageUrl?: string;
  PrimaryBtn?: { DefaultConfig?: { Text?: string; Link?: string } };
}

function inAppFields(stored: Record<string, unknown>): Fields {
  const content = ((stored.Content as InAppContent[] | undefined) ?? [])[0] ?? {};
  return {
    Layout: String(stored.Layout ?? "MIDDLE_BANNER"),
    Header: content.HeaderConfig?.Header ?? "",
    Body: content.BodyConfig?.Body ?? "",
    TextColor: content.BodyConfig?.TextColor ?? content.HeaderConfig?.TextColor ?? "",
    BackgroundColor: content.BackgroundColor ?? "",
    ImageUrl: content.ImageUrl ?? "",
    ButtonText: content.PrimaryBtn?.DefaultConfig?.Text ?? "",
    ButtonLink: content.PrimaryBtn?.DefaultConfig?.Link ?? "",
  };
}

/** The Pinpoint request body for a type's fields (empty fields left out). */
export function requestBody(type: TemplateType, fields: Fields): Record<string, unknown> {
  if (type === "INAPP") return inAppBody(fields);
  const present = Object.fromEntries(Object.entries(fields).filter(([, value]) => value.trim() !== ""));
  return type === "PUSH" ? { Default: present } : present;
}

/** The form's fields from a stored template. */
export function formFields(type: TemplateType, stored: Record<string, unknown>): Fields {
  if (type === "INAPP") return inAppFields(stored);
  const source = (type === "PUSH" ? stored.Default : stored) as Record<string, unknown> | undefined;
  return Object.fromEntries(FIELDS[type].map(({ name }) => [name, String(source?.[name] ?? "")]));
}

const path = { "template-name": "" };

export async function loadTemplate(type: TemplateType, name: string, version?: string) {
  const params = { params: { path: { ...path, "template-name": name }, query: { version } } };
  switch (type) {
    case "EMAIL":
      return (await call(api.GET("/v1/templates/{template-name}/email", params))) as Record<string, unknown>;
    case "SMS":
      return (await call(api.GET("/v1/templates/{template-name}/sms", params))) as Record<string, unknown>;
    case "PUSH":
      return (await call(api.GET("/v1/templates/{template-name}/push", params))) as Record<string, unknown>;
    case "VOICE":
      return (await call(api.GET("/v1/templates/{template-name}/voice", params))) as Record<string, unknown>;
    case "INAPP":
      return (await call(api.GET("/v1/templates/{template-name}/inapp", params))) as Record<string, unknown>;
  }
}

/** Create the template, or add a version to it (which becomes the latest; the active one changes separately). */
export async function saveTemplate(type: TemplateType, name: string, fields: Fields, exists: boolean) {
  const body = requestBody(type, fields) as never;
  const create = { params: { path: { "template-name": name } }, body };
  const update = { params: { path: { "template-name": name }, query: { "create-new-version": "true" } }, body };
  switch (type) {
    case "EMAIL":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/email", update))
        : call(api.POST("/v1/templates/{template-name}/email", create));
    case "SMS":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/sms", update))
        : call(api.POST("/v1/templates/{template-name}/sms", create));
    case "PUSH":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/push", update))
        : call(api.POST("/v1/templates/{template-name}/push", create));
    case "VOICE":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/voice", update))
        : call(api.POST("/v1/templates/{template-name}/voice", create));
    case "INAPP":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/inapp", update))
        : call(api.POST("/v1/templates/{template-name}/inapp", create));
  }
}
