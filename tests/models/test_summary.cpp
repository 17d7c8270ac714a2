// Model::summary against tf.keras 2.x's table, text for text: a Sequential MLP, a CNN, a functional
// model with two inputs (the "Connected to" layout), a nested autoencoder (collapsed and expanded),
// non-trainable counts, wrapping, and errors. Parameter counts are computed by hand in comments.
//
// Expected rows are laid out with place(): tf.keras puts the columns at fixed offsets (65-wide
// table: 0, 29, 55; 98-wide: 0, 32, 53, 65) and pads every row to the full width with spaces.
// Rows are compared without their trailing spaces, and the widths are checked separately.
#include <gtest/gtest.h>

#include <sstream>

#include "normnet/layers.h"
#include "normnet/model.h"

namespace normnet {
namespace {

using layers::Concatenate;
using layers::Conv2D;
using layers::Dense;
using layers::Flatten;
using layers::MaxPooling2D;

// Text at absolute columns: place({{1, "dense (Dense)"}, {29, "(None, 64)"}, {55, "50240"}}).
std::string place(const std::vector<std::pair<std::size_t, std::string>>& cells) {
  std::string line;
  for (const auto& [column, text] : cells) {
    EXPECT_LE(line.size(), column) << "cells overlap at column " << column;
    line.resize(column, ' ');
    line += text;
  }
  return line;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string rstrip(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Characters, counting the two-byte "¯" of the nested boxes as one.
std::size_t width_of(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Compares line by line (trailing spaces aside), then checks that every table row (not the
// "Model:" and totals lines) is exactly `width` wide, as tf.keras pads them.
void expect_summary(const std::string& got, const std::vector<std::string>& want, std::size_t width) {
  const auto lines = lines_of(got);
  ASSERT_EQ(lines.size(), want.size()) << got;
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(rstrip(lines[i]), want[i]) << "line " << i << "\n" << got;
  for (const std::string& line : lines) {
    const bool free_line = line.rfind("Model: ", 0) == 0 || line.find(" params: ") != std::string::npos;
    if (!free_line) {
      EXPECT_EQ(width_of(line), width) << "'" << line << "'";
    }
  }
  EXPECT_EQ(got.back(), '\n');
}

const std::string k65u(65, '_'), k65e(65, '='), k98u(98, '_'), k98e(98, '=');

TEST(Summary, SequentialMlp) {
  Sequential model;
  model.name("mlp");
  model.add(Input({784}));
  model.add(Dense(64).activation("relu").name("hidden"));
  model.add(Dense(10).name("logits"));
  // hidden: 784·64 + 64 = 50176 + 64 = 50240; logits: 64·10 + 10 = 650; total 50890.
  expect_summary(model.summary_string(),
                 {"Model: \"mlp\"",
                  k65u,
                  place({{1, "Layer (type)"}, {29, "Output Shape"}, {55, "Param #"}}),
                  k65e,
                  place({{1, "hidden (Dense)"}, {29, "(None, 64)"}, {55, "50240"}}),
                  "",
                  place({{1, "logits (Dense)"}, {29, "(None, 10)"}, {55, "650"}}),
                  "",
                  k65e,
                  "Total params: 50,890",
                  "Trainable params: 50,890",
                  "Non-trainable params: 0",
                  k65u},
                 65);
  EXPECT_EQ(model.count_params(), 50890);
}

TEST(Summary, FunctionalCnnChainIsSequentialLike) {
  const Tensor image = Input({28, 28, 1}, DType::kFloat32, "image");
  Tensor h = Conv2D(32, {3, 3}).activation("relu").name("conv")(image);  // (None, 26, 26, 32)
  h = MaxPooling2D({2, 2}).name("pool")(h);                             // (None, 13, 13, 32)
  h = Flatten().name("flat")(h);                                         // 13·13·32 = 5408
  const Tensor logits = Dense(10).name("logits")(h);
  Model model({image}, {logits});
  model.name("cnn");
  // conv: 3·3·1·32 + 32 = 320; logits: 5408·10 + 10 = 54090; total 54410.
  const std::vector<std::string> head = {"Model: \"cnn\"", k65u,
                                         place({{1, "Layer (type)"}, {29, "Output Shape"}, {55, "Param #"}}), k65e};
  const std::vector<std::string> rows = {
      place({{1, "image (InputLayer)"}, {29, "[(None, 28, 28, 1)]"}, {55, "0"}}),
      "",
      place({{1, "conv (Conv2D)"}, {29, "(None, 26, 26, 32)"}, {55, "320"}}),
      "",
      place({{1, "pool (MaxPooling2D)"}, {29, "(None, 13, 13, 32)"}, {55, "0"}}),
      "",
      place({{1, "flat (Flatten)"}, {29, "(None, 5408)"}, {55, "0"}}),
      "",
      place({{1, "logits (Dense)"}, {29, "(None, 10)"}, {55, "54090"}}),
      "",
      k65e};
  auto want = head;
  want.insert(want.end(), rows.begin(), rows.end());
  for (const char* line : {"Total params: 54,410", "Trainable params: 54,410", "Non-trainable params: 0"}) {
    want.push_back(line);
  }
  want.push_back(k65u);
  expect_summary(model.summary_string(), want, 65);

  // Frozen weights move to the non-trainable count; the rows keep their totals.
  model.get_layer("conv")->set_trainable(false);
  want = head;
  want.insert(want.end(), rows.begin(), rows.end());
  for (const char* line : {"Total params: 54,410", "Trainable params: 54,090", "Non-trainable params: 320"}) {
    want.push_back(line);
  }
  want.push_back(k65u);
  expect_summary(model.summary_string(), want, 65);
}

TEST(Summary, TwoInputsShowConnections) {
  const Tensor a = Input({32}, DType::kFloat32, "input_a");
  const Tensor b = Input({16}, DType::kFloat32, "input_b");
  const Tensor ha = Dense(8).name("tower_a")(a);  // 32·8 + 8 = 264
  const Tensor hb = Dense(8).name("tower_b")(b);  // 16·8 + 8 = 136
  const Tensor joined = Concatenate().name("concat")(std::vector<Tensor>{ha, hb})[0];  // (None, 16)
  const Tensor score = Dense(1).name("score")(joined);                                 // 16 + 1 = 17
  Model model({a, b}, {score});
  model.name("two_towers");
  // Total 264 + 136 + 17 = 417. The Connected-to column is 33 wide: the concat's list
  // "['tower_a[0][0]', 'tower_b[0][0]']" (34 characters) wraps after "',", and its rest
  // " 'tower_b[0][0]']" starts at column 65 with its space.
  expect_summary(model.summary_string(),
                 {"Model: \"two_towers\"",
                  k98u,
                  place({{1, "Layer (type)"}, {32, "Output Shape"}, {53, "Param #"}, {65, "Connected to"}}),
                  k98e,
                  place({{1, "input_a (InputLayer)"}, {32, "[(None, 32)]"}, {53, "0"}, {65, "[]"}}),
                  "",
                  place({{1, "input_b (InputLayer)"}, {32, "[(None, 16)]"}, {53, "0"}, {65, "[]"}}),
                  "",
                  place({{1, "tower_a (Dense)"}, {32, "(None, 8)"}, {53, "264"}, {65, "['input_a[0][0]']"}}),
                  "",
                  place({{1, "tower_b (Dense)"}, {32, "(None, 8)"}, {53, "136"}, {65, "['input_b[0][0]']"}}),
                  "",
                  place({{1, "concat (Concatenate)"}, {32, "(None, 16)"}, {53, "0"}, {65, "['tower_a[0][0]',"}}),
                  place({{66, "'tower_b[0][0]']"}}),
                  "",
                  place({{1, "score (Dense)"}, {32, "(None, 1)"}, {53, "17"}, {65, "['concat[0][0]']"}}),
                  "",
                  k98e,
                  "Total params: 417",
                  "Trainable params: 417",
                  "Non-trainable params: 0",
                  k98u},
                 98);
}

TEST(Summary, SharedLayerIsNotSequentialAndListsBothCalls) {
  const Tensor a = Input({4}, DType::kFloat32, "left");
  const Tensor b = Input({4}, DType::kFloat32, "right");
  auto shared = Dense(3).name("shared");  // 4·3 + 3 = 15, counted once
  const Tensor ya = shared(a);
  const Tensor yb = shared(b);
  Model model({a, b}, {ya, yb});
  model.name("siamese");
  const auto lines = lines_of(model.summary_string());
  ASSERT_GE(lines.size(), 9u);
  EXPECT_EQ(lines[1], k98u);
  EXPECT_EQ(rstrip(lines[8]), place({{1, "shared (Dense)"}, {32, "(None, 3)"}, {53, "15"}, {65, "['left[0][0]',"}}));
  EXPECT_EQ(rstrip(lines[9]), place({{66, "'right[0][0]']"}}));
  EXPECT_NE(model.summary_string().find("Total params: 15\n"), std::string::npos);
}

// The autoencoder of DESIGN.md §7 in miniature: encoder 784 → 32, decoder 32 → 784, as rows.
struct Autoencoder {
  Model encoder, decoder, whole;
};

Autoencoder make_autoencoder() {
  const Tensor enc_in = Input({784}, DType::kFloat32, "enc_in");
  Model encoder({enc_in}, {Dense(32).name("code")(enc_in)});  // 784·32 + 32 = 25120
  encoder.name("encoder");
  const Tensor dec_in = Input({32}, DType::kFloat32, "dec_in");
  Model decoder({dec_in}, {Dense(784).activation("sigmoid").name("recon")(dec_in)});  // 32·784 + 784 = 25872
  decoder.name("decoder");
  const Tensor image = Input({784}, DType::kFloat32, "image");
  Model whole({image}, {decoder(encoder(image))});
  whole.name("autoencoder");
  return {encoder, decoder, whole};
}

TEST(Summary, NestedModelsAreOneRowEach) {
  const Autoencoder ae = make_autoencoder();
  // Total 25120 + 25872 = 50992.
  expect_summary(ae.whole.summary_string(),
                 {"Model: \"autoencoder\"",
                  k65u,
                  place({{1, "Layer (type)"}, {29, "Output Shape"}, {55, "Param #"}}),
                  k65e,
                  place({{1, "image (InputLayer)"}, {29, "[(None, 784)]"}, {55, "0"}}),
                  "",
                  place({{1, "encoder (Functional)"}, {29, "(None, 32)"}, {55, "25120"}}),
                  "",
                  place({{1, "decoder (Functional)"}, {29, "(None, 784)"}, {55, "25872"}}),
                  "",
                  k65e,
                  "Total params: 50,992",
                  "Trainable params: 50,992",
                  "Non-trainable params: 0",
                  k65u},
                 65);
  // The encoder on its own still summarizes its own graph.
  expect_summary(ae.encoder.summary_string(),
                 {"Model: \"encoder\"",
                  k65u,
                  place({{1, "Layer (type)"}, {29, "Output Shape"}, {55, "Param #"}}),
                  k65e,
                  place({{1, "enc_in (InputLayer)"}, {29, "[(None, 784)]"}, {55, "0"}}),
                  "",
                  place({{1, "code (Dense)"}, {29, "(None, 32)"}, {55, "25120"}}),
                  "",
                  k65e,
                  "Total params: 25,120",
                  "Trainable params: 25,120",
                  "Non-trainable params: 0",
                  k65u},
                 65);
}

std::string macrons(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += "¯";
  return s;
}

TEST(Summary, ExpandNestedDrawsBoxes) {
  const Autoencoder ae = make_autoencoder();
  // A box opens with |¯…¯| (65 wide), lists the nested layers between "|" borders with the
  // columns of the outer table (the name column one narrower), and closes with 65 "¯". No blank
  // row follows the last nested layer nor the box, as tf.keras.
  auto boxed = [](std::vector<std::pair<std::size_t, std::string>> cells) {
    cells.insert(cells.begin(), {0, "|"});
    std::string line = place(cells);
    line.resize(64, ' ');
    return line + "|";
  };
  const std::string open = "|" + macrons(63) + "|";
  const std::string blank_in_box = "|" + std::string(63, ' ') + "|";
  expect_summary(ae.whole.summary_string(/*expand_nested=*/true),
                 {"Model: \"autoencoder\"",
                  k65u,
                  place({{1, "Layer (type)"}, {29, "Output Shape"}, {55, "Param #"}}),
                  k65e,
                  place({{1, "image (InputLayer)"}, {29, "[(None, 784)]"}, {55, "0"}}),
                  "",
                  place({{1, "encoder (Functional)"}, {29, "(None, 32)"}, {55, "25120"}}),
                  open,
                  boxed({{2, "enc_in (InputLayer)"}, {29, "[(None, 784)]"}, {55, "0"}}),
                  blank_in_box,
                  boxed({{2, "code (Dense)"}, {29, "(None, 32)"}, {55, "25120"}}),
                  macrons(65),
                  place({{1, "decoder (Functional)"}, {29, "(None, 784)"}, {55, "25872"}}),
                  open,
                  boxed({{2, "dec_in (InputLayer)"}, {29, "[(None, 32)]"}, {55, "0"}}),
                  blank_in_box,
                  boxed({{2, "recon (Dense)"}, {29, "(None, 784)"}, {55, "25872"}}),
                  macrons(65),
                  k65e,
                  "Total params: 50,992",
                  "Trainable params: 50,992",
                  "Non-trainable params: 0",
                  k65u},
                 65);
}

TEST(Summary, LongNamesWrapInsideTheirColumn) {
  // The name column of the 65-wide table holds 26 characters; the rest continues on the next line.
  Sequential model;
  model.name("wrap");
  model.add(Input({3}));
  model.add(Dense(2).name("a_rather_long_layer_name_indeed"));  // 3·2 + 2 = 8
  const auto lines = lines_of(model.summary_string());
  EXPECT_EQ(rstrip(lines[4]), place({{1, "a_rather_long_layer_name_i"}, {29, "(None, 2)"}, {55, "8"}}));
  EXPECT_EQ(rstrip(lines[5]), place({{1, "ndeed (Dense)"}}));
}

TEST(Summary, StreamsAndErrors) {
  Sequential unbuilt;
  unbuilt.add(Dense(4));
  EXPECT_THROW((void)unbuilt.summary_string(), ValueError);
  const Autoencoder ae = make_autoencoder();
  std::ostringstream out;
  ae.whole.summary(out);
  EXPECT_EQ(out.str(), ae.whole.summary_string());
}

}  // namespace
}  // namespace normnet
