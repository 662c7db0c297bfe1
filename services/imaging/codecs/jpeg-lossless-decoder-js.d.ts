declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    constructor(buffer?: ArrayBuffer, numBytes?: number);
    decode(buffer: ArrayBuffer, offset: number, length: number, numBytes?: number): Uint8Array | Uint16Array;
    frame: { dimX: number; dimY: number; precision: number; numComp: number };
    /** Decoding position (pixel column / row) and frame size, as the decoder left them. */
    xLoc: number;
    yLoc: number;
    xDim: number;
    yDim: number;
  }
}
