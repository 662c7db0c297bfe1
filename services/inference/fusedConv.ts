/**
 * A convolution layer that runs as ONE fused TF.js op (convolution + bias + activation).
 *
 * tfjs-layers fuses Conv2D only for 'relu'/'linear'/'elu' and never fuses DepthwiseConv2D: a
 * MobileNetV2 (ReLU6 everywhere, 17 depthwise convolutions) then spends most of its time in
 * separate bias-add and ReLU6 passes over large tensors on the wasm backend. Model v2's
 * model.json names this class for those layers; the weights keep Keras' names
 * (`<layer>/kernel` or `<layer>/depthwise_kernel`, `<layer>/bias`), so the file stays a plain
 * layers model apart from the class name. Registered once on import.
 */
import * as tf from '@tensorflow/tfjs';

type Activation = 'linear' | 'relu' | 'relu6';

interface FusedConvConfig {
  name?: string;
  trainable?: boolean;
  dtype?: string;
  batchInputShape?: number[];
  /** Output channels (ignored when depthwise: one filter per input channel). */
  filters?: number;
  depthwise?: boolean;
  kernelSize: number[];
  strides: number[];
  padding: 'same' | 'valid';
  activation: Activation;
}

export class FusedConv2D extends tf.layers.Layer {
  static className = 'FusedConv2D';
  private readonly cfg: FusedConvConfig;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(config: FusedConvConfig) {
    super(config as unknown as ConstructorParameters<typeof tf.layers.Layer>[0]);
    if (!['linear', 'relu', 'relu6'].includes(config.activation)) throw new Error(`FusedConv2D: activation '${config.activation}' is not supported`);
    this.cfg = { ...config };
  }

  private outChannels(inChannels: number): number {
    return this.cfg.depthwise ? inChannels : (this.cfg.filters as number);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const cin = shape[3] as number;
    const [kh, kw] = this.cfg.kernelSize;
    const zeros = tf.initializers.zeros();
    this.kernel = this.cfg.depthwise
      ? this.addWeight('depthwise_kernel', [kh, kw, cin, 1], 'float32', zeros)
      : this.addWeight('kernel', [kh, kw, cin, this.outChannels(cin)], 'float32', zeros);
    this.bias = this.addWeight('bias', [this.outChannels(cin)], 'float32', zeros);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [n, h, w, c] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const size = (len: number | null, k: number, s: number) =>
      len == null ? null : this.cfg.padding === 'same' ? Math.ceil(len / s) : Math.ceil((len - k + 1) / s);
    return [n, size(h, this.cfg.kernelSize[0], this.cfg.strides[0]), size(w, this.cfg.kernelSize[1], this.cfg.strides[1]),
      this.outChannels(c as number)];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const args = {
        x, strides: this.cfg.strides as [number, number], pad: this.cfg.padding,
        bias: this.bias!.read(), activation: this.cfg.activation,
      };
      return this.cfg.depthwise
        ? tf.fused.depthwiseConv2d({ ...args, filter: this.kernel!.read() as tf.Tensor4D })
        : tf.fused.conv2d({ ...args, filter: this.kernel!.read() as tf.Tensor4D });
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const { filters, depthwise, kernelSize, strides, padding, activation } = this.cfg;
    return { ...super.getConfig(), filters: filters ?? null, depthwise: !!depthwise, kernelSize, strides, padding, activation };
  }
}

tf.serialization.registerClass(FusedConv2D);
