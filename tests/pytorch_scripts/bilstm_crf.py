"""The PyTorch tutorial's Bi-LSTM CRF tagger ("Advanced: Making Dynamic Decisions"): the
tutorial's per-tag loops (argmax via torch.max(vec, 1) and .item(), log_sum_exp with
view/expand, torch.full((1, n), -10000.), transitions.data rows set to -10000, the score of the
gold path indexed with transitions[tags[i + 1], tags[i]], Viterbi with backpointers) trained
with SGD(weight_decay=1e-4); then the vectorised batch form its exercise asks for
(torch.logsumexp over a broadcast, Viterbi with max(dim) values and indices, gather of the gold
emissions, a packed bidirectional LSTM over padded sentences of different lengths, masks with
torch.where). The tutorial's init_hidden draws torch.randn each call; here it draws from a
seeded NumPy generator, whose stream both libraries share."""
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.manual_seed(1)
hidden_rng = np.random.default_rng(1)


def argmax(vec):
    # return the argmax as a python int
    _, idx = torch.max(vec, 1)
    return idx.item()


def prepare_sequence(seq, to_ix):
    idxs = [to_ix[w] for w in seq]
    return torch.tensor(idxs, dtype=torch.long)


# Compute log sum exp in a numerically stable way for the forward algorithm
def log_sum_exp(vec):
    max_score = vec[0, argmax(vec)]
    max_score_broadcast = max_score.view(1, -1).expand(1, vec.size()[1])
    return max_score + \
        torch.log(torch.sum(torch.exp(vec - max_score_broadcast)))


class BiLSTM_CRF(nn.Module):

    def __init__(self, vocab_size, tag_to_ix, embedding_dim, hidden_dim):
        super(BiLSTM_CRF, self).__init__()
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.vocab_size = vocab_size
        self.tag_to_ix = tag_to_ix
        self.tagset_size = len(tag_to_ix)

        self.word_embeds = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2,
                            num_layers=1, bidirectional=True)

        # Maps the output of the LSTM into tag space.
        self.hidden2tag = nn.Linear(hidden_dim, self.tagset_size)

        # Matrix of transition parameters.  Entry i,j is the score of
        # transitioning *to* i *from* j.
        self.transitions = nn.Parameter(
            torch.randn(self.tagset_size, self.tagset_size))

        # These two statements enforce the constraint that we never transfer
        # to the start tag and we never transfer from the stop tag
        self.transitions.data[tag_to_ix[START_TAG], :] = -10000
        self.transitions.data[:, tag_to_ix[STOP_TAG]] = -10000

        self.hidden = self.init_hidden()

    def init_hidden(self):
        return (torch.from_numpy(hidden_rng.standard_normal((2, 1, self.hidden_dim // 2))).float(),
                torch.from_numpy(hidden_rng.standard_normal((2, 1, self.hidden_dim // 2))).float())

    def _forward_alg(self, feats):
        # Do the forward algorithm to compute the partition function
        init_alphas = torch.full((1, self.tagset_size), -10000.)
        # START_TAG has all of the score.
        init_alphas[0][self.tag_to_ix[START_TAG]] = 0.

        # Wrap in a variable so that we will get automatic backprop
        forward_var = init_alphas

        # Iterate through the sentence
        for feat in feats:
            alphas_t = []  # The forward tensors at this timestep
            for next_tag in range(self.tagset_size):
                # broadcast the emission score: it is the same regardless of
                # the previous tag
                emit_score = feat[next_tag].view(
                    1, -1).expand(1, self.tagset_size)
                # the ith entry of trans_score is the score of transitioning to
                # next_tag from i
                trans_score = self.transitions[next_tag].view(1, -1)
                # The ith entry of next_tag_var is the value for the
                # edge (i -> next_tag) before we do log-sum-exp
                next_tag_var = forward_var + trans_score + emit_score
                # The forward variable for this tag is log-sum-exp of all the
                # scores.
                alphas_t.append(log_sum_exp(next_tag_var).view(1))
            forward_var = torch.cat(alphas_t).view(1, -1)
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        alpha = log_sum_exp(terminal_var)
        return alpha

    def _get_lstm_features(self, sentence):
        self.hidden = self.init_hidden()
        embeds = self.word_embeds(sentence).view(len(sentence), 1, -1)
        lstm_out, self.hidden = self.lstm(embeds, self.hidden)
        lstm_out = lstm_out.view(len(sentence), self.hidden_dim)
        lstm_feats = self.hidden2tag(lstm_out)
        return lstm_feats

    def _score_sentence(self, feats, tags):
        # Gives the score of a provided tag sequence
        score = torch.zeros(1)
        tags = torch.cat([torch.tensor([self.tag_to_ix[START_TAG]], dtype=torch.long), tags])
        for i, feat in enumerate(feats):
            score = score + \
                self.transitions[tags[i + 1], tags[i]] + feat[tags[i + 1]]
        score = score + self.transitions[self.tag_to_ix[STOP_TAG], tags[-1]]
        return score

    def _viterbi_decode(self, feats):
        backpointers = []

        # Initialize the viterbi variables in log space
        init_vvars = torch.full((1, self.tagset_size), -10000.)
        init_vvars[0][self.tag_to_ix[START_TAG]] = 0

        # forward_var at step i holds the viterbi variables for step i-1
        forward_var = init_vvars
        for feat in feats:
            bptrs_t = []  # holds the backpointers for this step
            viterbivars_t = []  # holds the viterbi variables for this step

            for next_tag in range(self.tagset_size):
                # next_tag_var[i] holds the viterbi variable for tag i at the
                # previous step, plus the score of transitioning
                # from tag i to next_tag.
                # We don't include the emission scores here because the max
                # does not depend on them (we add them in below)
                next_tag_var = forward_var + self.transitions[next_tag]
                best_tag_id = argmax(next_tag_var)
                bptrs_t.append(best_tag_id)
                viterbivars_t.append(next_tag_var[0][best_tag_id].view(1))
            # Now add in the emission scores, and assign forward_var to the set
            # of viterbi variables we just computed
            forward_var = (torch.cat(viterbivars_t) + feat).view(1, -1)
            backpointers.append(bptrs_t)

        # Transition to STOP_TAG
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        best_tag_id = argmax(terminal_var)
        path_score = terminal_var[0][best_tag_id]

        # Follow the back pointers to decode the best path.
        best_path = [best_tag_id]
        for bptrs_t in reversed(backpointers):
            best_tag_id = bptrs_t[best_tag_id]
            best_path.append(best_tag_id)
        # Pop off the start tag (we dont want to return that to the caller)
        start = best_path.pop()
        assert start == self.tag_to_ix[START_TAG]  # Sanity check
        best_path.reverse()
        return path_score, best_path

    def neg_log_likelihood(self, sentence, tags):
        feats = self._get_lstm_features(sentence)
        forward_score = self._forward_alg(feats)
        gold_score = self._score_sentence(feats, tags)
        return forward_score - gold_score

    def forward(self, sentence):  # dont confuse this with _forward_alg above.
        # Get the emission scores from the BiLSTM
        lstm_feats = self._get_lstm_features(sentence)

        # Find the best path, given the features.
        score, tag_seq = self._viterbi_decode(lstm_feats)
        return score, tag_seq


START_TAG = "<START>"
STOP_TAG = "<STOP>"
EMBEDDING_DIM = 5
HIDDEN_DIM = 4

# Make up some training data
training_data = [(
    "the wall street journal reported today that apple corporation made money".split(),
    "B I I I O O O B I O O".split()
), (
    "georgia tech is a university in georgia".split(),
    "B I O O O O B".split()
)]

word_to_ix = {}
for sentence, tags in training_data:
    for word in sentence:
        if word not in word_to_ix:
            word_to_ix[word] = len(word_to_ix)

tag_to_ix = {"B": 0, "I": 1, "O": 2, START_TAG: 3, STOP_TAG: 4}

model = BiLSTM_CRF(len(word_to_ix), tag_to_ix, EMBEDDING_DIM, HIDDEN_DIM)
share_init(model)
optimizer = optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)

# Check predictions before training
with torch.no_grad():
    precheck_sent = prepare_sequence(training_data[0][0], word_to_ix)
    precheck_tags = torch.tensor([tag_to_ix[t] for t in training_data[0][1]], dtype=torch.long)
    score, path = model(precheck_sent)
    report("precheck", score.item(), path, score.requires_grad)

# Make sure prepare_sequence from earlier in the LSTM section is loaded
for epoch in range(
        3):  # again, normally you would NOT do 300 epochs, it is toy data
    for sentence, tags in training_data:
        # Step 1. Remember that Pytorch accumulates gradients.
        # We need to clear them out before each instance
        model.zero_grad()

        # Step 2. Get our inputs ready for the network, that is,
        # turn them into Tensors of word indices.
        sentence_in = prepare_sequence(sentence, word_to_ix)
        targets = torch.tensor([tag_to_ix[t] for t in tags], dtype=torch.long)

        # Step 3. Run our forward pass.
        loss = model.neg_log_likelihood(sentence_in, targets)

        # Step 4. Compute the loss, gradients, and update the parameters by
        # calling optimizer.step()
        loss.backward()
        optimizer.step()
        report("epoch", epoch, list(loss.shape), loss.item(), model.transitions.grad.norm().item())

# Check predictions after training
with torch.no_grad():
    precheck_sent = prepare_sequence(training_data[0][0], word_to_ix)
    score, path = model(precheck_sent)
    report("after", score.item(), path, model.transitions[tag_to_ix[START_TAG]].tolist())


# ---- the exercise: the forward algorithm and Viterbi over a padded batch, vectorised
class BatchBiLSTM_CRF(nn.Module):
    def __init__(self, vocab_size, tag_to_ix, embedding_dim, hidden_dim):
        super().__init__()
        self.tag_to_ix = tag_to_ix
        self.tagset_size = len(tag_to_ix)
        self.word_embeds = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2, num_layers=1,
                            bidirectional=True, batch_first=True)
        self.hidden2tag = nn.Linear(hidden_dim, self.tagset_size)
        self.transitions = nn.Parameter(torch.randn(self.tagset_size, self.tagset_size))
        self.transitions.data[tag_to_ix[START_TAG], :] = -10000
        self.transitions.data[:, tag_to_ix[STOP_TAG]] = -10000

    def _get_lstm_features(self, sentences, lengths):
        embeds = self.word_embeds(sentences)
        packed = pack_padded_sequence(embeds, lengths, batch_first=True, enforce_sorted=False)
        lstm_out, _ = self.lstm(packed)
        lstm_out, _ = pad_packed_sequence(lstm_out, batch_first=True, total_length=sentences.size(1))
        return self.hidden2tag(lstm_out)

    def _forward_alg(self, feats, mask):
        B, T, K = feats.shape
        forward_var = torch.full((B, K), -10000., device=feats.device)
        forward_var[:, self.tag_to_ix[START_TAG]] = 0.
        for t in range(T):
            # [B, next, prev]: previous scores + transition(prev -> next) + emission(next)
            scores = forward_var.unsqueeze(1) + self.transitions.unsqueeze(0) + feats[:, t].unsqueeze(2)
            new_var = torch.logsumexp(scores, dim=2)
            forward_var = torch.where(mask[:, t].unsqueeze(1), new_var, forward_var)
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        return torch.logsumexp(terminal_var, dim=1)

    def _score_sentence(self, feats, tags, mask):
        B, T, _ = feats.shape
        start = torch.full((B, 1), self.tag_to_ix[START_TAG], dtype=torch.long)
        tags_ext = torch.cat([start, tags], dim=1)
        emit = feats.gather(2, tags.unsqueeze(2)).squeeze(2)
        trans = self.transitions[tags_ext[:, 1:], tags_ext[:, :-1]]
        score = ((emit + trans) * mask.float()).sum(dim=1)
        last = tags_ext.gather(1, mask.long().sum(dim=1, keepdim=True)).squeeze(1)
        return score + self.transitions[self.tag_to_ix[STOP_TAG], last]

    def neg_log_likelihood(self, sentences, tags, lengths):
        mask = sentences != 0
        feats = self._get_lstm_features(sentences, lengths)
        return (self._forward_alg(feats, mask) - self._score_sentence(feats, tags, mask)).mean()

    def forward(self, sentences, lengths):
        mask = sentences != 0
        feats = self._get_lstm_features(sentences, lengths)
        B, T, K = feats.shape
        forward_var = torch.full((B, K), -10000.)
        forward_var[:, self.tag_to_ix[START_TAG]] = 0
        backpointers = []
        for t in range(T):
            next_tag_var = forward_var.unsqueeze(1) + self.transitions
            viterbivars_t, bptrs_t = next_tag_var.max(dim=2)
            backpointers.append(bptrs_t)
            new_var = viterbivars_t + feats[:, t]
            forward_var = torch.where(mask[:, t:t + 1], new_var, forward_var)
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        path_score, best_tag_id = torch.max(terminal_var, dim=-1)
        paths = []
        for b in range(B):
            n = int(lengths[b])
            best = [best_tag_id[b].item()]
            for bptrs_t in reversed(backpointers[:n]):
                best.append(bptrs_t[b, best[-1]].item())
            assert best.pop() == self.tag_to_ix[START_TAG]
            best.reverse()
            paths.append(best)
        return path_score, paths


word_to_ix2 = {"<pad>": 0}
for sentence, _ in training_data:
    for word in sentence:
        word_to_ix2.setdefault(word, len(word_to_ix2))
lengths = torch.tensor([len(s) for s, _ in training_data])
T = int(lengths.max())
sentences = torch.zeros(len(training_data), T, dtype=torch.long)
tags = torch.zeros(len(training_data), T, dtype=torch.long)
for b, (s, ts) in enumerate(training_data):
    sentences[b, :len(s)] = torch.tensor([word_to_ix2[w] for w in s])
    tags[b, :len(ts)] = torch.tensor([tag_to_ix[t] for t in ts])

batch_model = BatchBiLSTM_CRF(len(word_to_ix2), tag_to_ix, EMBEDDING_DIM, HIDDEN_DIM)
share_init(batch_model, "batch")
optimizer = optim.SGD(batch_model.parameters(), lr=0.05, weight_decay=1e-4)
for epoch in range(3):
    optimizer.zero_grad()
    loss = batch_model.neg_log_likelihood(sentences, tags, lengths)
    loss.backward()
    optimizer.step()
    report("batch epoch", epoch, loss.item(), batch_model.lstm.weight_hh_l0_reverse.grad.abs().sum().item(),
           batch_model.word_embeds.weight.grad[0].abs().sum().item())
with torch.no_grad():
    score, paths = batch_model(sentences, lengths)
report("batch viterbi", score.tolist(), paths)
