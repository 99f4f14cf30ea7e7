// What the console sends with an uploaded import file (ClarionUploadImportFile).

/** A file name the server keeps as it is: plain characters (others become "-"), at most 90 before the extension. */
export function uploadName(name: string): string {
  const dot = name.lastIndexOf(".");
  const extension = dot > 0 ? name.slice(dot).toLowerCase() : "";
  const stem = (dot > 0 ? name.slice(0, dot) : name).replace(/[^A-Za-z0-9._-]/g, "-").slice(-90).replace(/^[^A-Za-z0-9]+/, "");
  return (stem || "upload") + extension;
}
