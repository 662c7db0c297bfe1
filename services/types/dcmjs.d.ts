// dcmjs ships no type declarations; this is the little of it that services/api/lib/dataset-json.ts uses.
declare module 'dcmjs' {
  interface DicomDict { meta: Record<string, unknown>; dict: Record<string, { vr: string; Value?: unknown[] }> }
  const dcmjs: {
    data: {
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean; untilTag?: string | null; includeUntilTagValue?: boolean; noCopy?: boolean }): DicomDict;
      };
    };
    log: { setLevel(level: string): void };
  };
  export default dcmjs;
}
