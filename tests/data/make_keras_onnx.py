"""Writes keras_tf2onnx.onnx (a small Keras CNN converted by tf2onnx) and keras_tf2onnx_ref.npz (an
input and Keras's own output for it), which tests/test_onnx.py loads with minicnn.

Made with tensorflow-cpu 2.15.1, tf2onnx 1.17.0 and onnx 1.16.2 (in a venv of their own: they are
not minicnn's dependencies): python tests/data/make_keras_onnx.py
"""
import os

import numpy as np
import tensorflow as tf
import tf2onnx

HERE = os.path.dirname(os.path.abspath(__file__))
tf.random.set_seed(0)
L = tf.keras.layers
inp = tf.keras.Input((32, 32, 3), name="input")
x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
x = L.BatchNormalization()(x)
x = L.Conv2D(16, 3, strides=2, padding="same")(x)          # asymmetric SAME padding
x = L.LeakyReLU(0.1)(x)
x = L.MaxPooling2D(2)(x)
x = L.DepthwiseConv2D(3, padding="same")(x)
x = L.AveragePooling2D(2, padding="same")(x)
x = L.Conv2D(16, 1)(x)
x = L.UpSampling2D(2, interpolation="nearest")(x)
x = L.ZeroPadding2D(((1, 0), (0, 1)))(x)
x = L.Conv2D(10, 3, strides=2, padding="valid", activation="sigmoid")(x)
g = L.GlobalAveragePooling2D()(x)
f = L.Flatten()(x)
y = L.Concatenate()([g, L.Dense(6)(f)])
y = L.Dropout(0.3)(y)
out = L.Dense(5, activation="softmax")(y)
model = tf.keras.Model(inp, out)
model.layers[2].moving_mean.assign(tf.random.normal([8]) * 0.1)
model.layers[2].moving_variance.assign(tf.random.uniform([8]) + 0.5)
x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
ref = model(x, training=False).numpy()
tf2onnx.convert.from_keras(model, input_signature=[tf.TensorSpec((None, 32, 32, 3), tf.float32, name="input")], opset=17, output_path=os.path.join(HERE, "keras_tf2onnx.onnx"))
np.savez(os.path.join(HERE, "keras_tf2onnx_ref.npz"), x=x, y=ref)
print("wrote keras_tf2onnx.onnx and keras_tf2onnx_ref.npz", ref.shape)
